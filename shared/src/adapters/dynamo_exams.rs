//! Exams, questions and attempts in DynamoDB (the single table; see [`crate::resources`]).
