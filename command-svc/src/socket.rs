//! Commands from end users' sockets, which the query service forwards over NATS request/reply
//! on `<root>_cmd.<tenant>.<verb>`. Served as a NATS service (`async_nats::service`, the NATS
//! "micro" protocol: `$SRV.PING|INFO|STATS.parley-command-svc` answer for it), one endpoint per
//! verb in the queue group `parley-command-svc`, so one instance answers each request.
//!
//! The request body is the command's JSON ([`events::command`]); the reply is a
//! [`Reply`]: the command's answer, or the status and error body its REST twin would have
//! answered. Each runs through [`crate::commands`] exactly like the REST command.

use crate::commands::{Command, CommandError, Commands};
use async_nats::service::{Request, ServiceExt};
use events::command::{BlockUser, Refusal, RemoveMember, Reply, SendMessage, SetReadPosition};
use events::subject::{CommandVerb, Subjects};
use events::TenantId;
use futures::StreamExt;

/// Requests handled at once by one instance.
const CONCURRENCY: usize = 1024;

/// The service's name, and the queue group every command-svc instance joins.
pub const SERVICE: &str = "parley-command-svc";

/// The socket command endpoints, started.
pub struct SocketCommands {
    service: async_nats::service::Service,
    endpoints: Vec<(CommandVerb, async_nats::service::endpoint::Endpoint)>,
}

/// Registers the service and one endpoint per [`CommandVerb`].
///
/// # Errors
/// NATS refuses a subscription.
pub async fn start(
    client: &async_nats::Client,
    subjects: &Subjects,
) -> anyhow::Result<SocketCommands> {
    let service = client
        .service_builder()
        .description("Parley's commands from end users' sockets")
        .queue_group(SERVICE)
        .start(SERVICE, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| anyhow::anyhow!("starting the NATS service {SERVICE}: {e}"))?;
    let mut endpoints = Vec::new();
    for verb in CommandVerb::ALL {
        let endpoint = service
            .endpoint_builder()
            .name(verb.as_str())
            .add(subjects.commands_of(verb))
            .await
            .map_err(|e| anyhow::anyhow!("adding the {} endpoint: {e}", verb.as_str()))?;
        endpoints.push((verb, endpoint));
    }
    Ok(SocketCommands { service, endpoints })
}

impl SocketCommands {
    /// Answers requests until `stop` resolves, then stops taking new ones, finishes those in
    /// flight and deregisters the service.
    pub async fn serve(
        self,
        subjects: Subjects,
        commands: Commands,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        let requests = futures::stream::select_all(
            self.endpoints
                .into_iter()
                .map(|(verb, endpoint)| endpoint.map(move |r| (verb, r)).boxed()),
        );
        let (subjects, commands) = (&subjects, &commands);
        requests
            .take_until(stop)
            .for_each_concurrent(CONCURRENCY, |(verb, request)| async move {
                let body = match subjects.parse_command(&request.message.subject) {
                    Some((tenant, _)) => answer(commands, &tenant, verb, &request).await,
                    None => refusal(CommandError::invalid("subject", "not a command subject")),
                };
                if let Err(e) = request.respond(Ok(body.into())).await {
                    tracing::warn!(error = %e, "command reply not sent");
                }
            })
            .await;
        if let Err(e) = self.service.stop().await {
            tracing::warn!(error = %e, "the NATS service did not deregister");
        }
        tracing::info!("socket commands stopped");
    }
}

/// The reply to one request of `verb`: the socket name of each command is its verb, and
/// nothing else about it is written here.
async fn answer(commands: &Commands, tenant: &TenantId, verb: CommandVerb, r: &Request) -> Vec<u8> {
    match verb {
        CommandVerb::Send => run::<SendMessage>(commands, tenant, &r.message.payload).await,
        CommandVerb::Read => run::<SetReadPosition>(commands, tenant, &r.message.payload).await,
        CommandVerb::Block => run::<BlockUser>(commands, tenant, &r.message.payload).await,
        CommandVerb::Leave => run::<RemoveMember>(commands, tenant, &r.message.payload).await,
    }
}

async fn run<C>(commands: &Commands, tenant: &TenantId, body: &[u8]) -> Vec<u8>
where
    C: Command + serde::de::DeserializeOwned,
    C::Output: serde::Serialize,
{
    let cmd = match serde_json::from_slice::<C>(body) {
        Ok(c) => c,
        Err(e) => {
            return refusal(CommandError::invalid(
                "body",
                format!("not the command's JSON: {e}"),
            ))
        }
    };
    match commands.run(tenant, cmd).await {
        Ok(ok) => encode(&Reply::Ok { ok }),
        Err(e) => refusal(e),
    }
}

fn refusal(e: CommandError) -> Vec<u8> {
    let (status, error) = e.into_refusal();
    encode(&Reply::<()>::Err { status, error })
}

/// A reply's JSON. Encoding a reply of plain fields cannot fail; if it ever did, the reply
/// says so instead of being empty.
fn encode<T: serde::Serialize>(r: &Reply<T>) -> Vec<u8> {
    serde_json::to_vec(r).unwrap_or_else(|e| {
        let fallback: Reply<()> = Reply::Err {
            status: 500,
            error: Refusal {
                code: "INTERNAL".into(),
                message: format!("reply not encodable: {e}"),
                field: None,
                retry_after_ms: None,
            },
        };
        serde_json::to_vec(&fallback).unwrap_or_else(|_| b"{}".to_vec())
    })
}
