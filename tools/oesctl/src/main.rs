//! `oesctl`: operations on an oes deployment or the local emulator.
//!
//! - `oesctl provision --endpoint URL --prefix P`: creates the table, queues and SES identity
//!   from the definitions `template.yaml` uses, and prints the environment the functions need.
//! - `oesctl users set-role EMAIL ROLE`: changes a user's role (their access tokens stop working,
//!   so the new role applies at the next sign-in).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oes_shared::adapters::dynamo::DynamoUsers;
use oes_shared::clock::{Clock, SystemClock};
use oes_shared::ports::{UserStore, UserUpdate};
use oes_shared::resources::{TABLE, provision};
use oes_shared::user::{Email, Role};
use oes_shared::wiring::AwsClients;

#[derive(Parser)]
#[command(version, about = "Operations CLI for oes")]
struct Cli {
    /// AWS endpoint (the local emulator, e.g. http://127.0.0.1:4566); defaults to AWS_ENDPOINT_URL
    /// or real AWS.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table, queues (with redrive policy) and SES sender identity. Idempotent.
    Provision {
        /// Resource name prefix: the table is `<prefix>-data`, the queues `<prefix>-email-*`.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local")]
        prefix: String,
        /// The sender identity to create in SES.
        #[arg(long, env = "OES_SENDER_EMAIL", default_value = "noreply@example.com")]
        sender: String,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Set a user's role (student, instructor, admin).
    SetRole {
        /// The user's email address.
        email: String,
        /// The new role.
        role: Role,
        /// The table (default: OES_TABLE, or `<OES_PREFIX>-data`).
        #[arg(long, env = "OES_TABLE")]
        table: Option<String>,
        /// Resource prefix, used when no table is given.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local")]
        prefix: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    oes_shared::telemetry::init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("oesctl: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), oes_shared::ports::BoxError> {
    let clients = AwsClients::load(cli.endpoint.as_deref()).await;
    match cli.command {
        Command::Provision { prefix, sender } => {
            let provisioned = provision(&clients, &prefix, &sender).await?;
            for (name, value) in provisioned.env() {
                println!("export {name}={value}");
            }
        }
        Command::Users {
            command:
                UsersCommand::SetRole {
                    email,
                    role,
                    table,
                    prefix,
                },
        } => {
            let table = table.unwrap_or_else(|| format!("{prefix}-{}", TABLE.suffix));
            let users = DynamoUsers::new(clients.dynamodb, table);
            let email = Email::parse(&email)?;
            let user = users
                .find_by_email(&email)
                .await?
                .ok_or_else(|| format!("no user with email {email}"))?;
            let updated = users
                .update(&user.id, UserUpdate::Role(role), SystemClock.now())
                .await?;
            println!(
                "{} is now {} (signed-in sessions must sign in again)",
                updated.email, updated.role
            );
        }
    }
    Ok(())
}
