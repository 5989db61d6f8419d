//! Exams, questions and attempts in memory (the embedded mode and unit tests).
