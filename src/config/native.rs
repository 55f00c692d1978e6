//! `sources` entries that name a PBX to connect to (`ami:` / `esl:`) rather than a preset for
//! OTLP records. The secret must come from `${env:…}`: a password written into the file ends up
//! in backups and tickets, so a literal one is refused with the fix in the message.

use std::collections::HashSet;

use super::env::EnvRefs;
use super::model::{ClientTlsConfig, NativeInputConfig, NativeKind, Secret};
use super::tree::{Kind, Node};
use super::walk::{Ctx, Fields};

const AMI_KEYS: &[&str] = &[
    "name",
    "host",
    "port",
    "username",
    "secret",
    "tls",
    "keepalive",
    "reply_timeout",
];
const ESL_KEYS: &[&str] = &[
    "name",
    "host",
    "port",
    "password",
    "keepalive",
    "reply_timeout",
];

/// Reads one `ami:` / `esl:` mapping at `path`.
pub(crate) fn native_input(
    ctx: &mut Ctx<'_>,
    kind: NativeKind,
    node: &Node,
    path: &str,
) -> Option<NativeInputConfig> {
    let allowed = match kind {
        NativeKind::Ami => AMI_KEYS,
        NativeKind::Esl => ESL_KEYS,
    };
    let f = ctx.fields(node, path, allowed)?;
    let name = ctx.string(&f, "name");
    let host = ctx.string(&f, "host");
    for (key, v) in [("name", name.is_none()), ("host", host.is_none())] {
        if v && !f.has(key) {
            ctx.missing(&f, key);
        }
    }
    let mut out = NativeInputConfig::new(kind, "", "", "");
    if let Some(port) = ctx.uint(&f, "port", 1, 65535) {
        out.port = port as u16;
    }
    let secret_key = match kind {
        NativeKind::Ami => "secret",
        NativeKind::Esl => "password",
    };
    if kind == NativeKind::Ami {
        out.username = ctx.string(&f, "username");
        if !f.has("username") {
            ctx.missing(&f, "username");
        }
        if let Some(tls_node) = f.node("tls")
            && !tls_node.is_null()
            && let Some(t) = ctx.fields(
                tls_node,
                &f.path("tls"),
                &["ca_file", "server_name", "insecure_skip_verify"],
            )
        {
            out.tls = Some(ClientTlsConfig {
                ca_file: ctx.file(&t, "ca_file"),
                server_name: ctx.string(&t, "server_name"),
                insecure_skip_verify: ctx.bool(&t, "insecure_skip_verify").unwrap_or(false),
            });
        }
    }
    let secret = secret(ctx, &f, secret_key);
    out.keepalive = ctx.positive_duration(&f, "keepalive", out.keepalive);
    out.reply_timeout = ctx.positive_duration(&f, "reply_timeout", out.reply_timeout);
    out.name = name?;
    out.host = host?;
    out.secret = secret?;
    Some(out)
}

/// The secret of `f.key`: required, and only as an `${env:…}` reference.
fn secret(ctx: &mut Ctx<'_>, f: &Fields<'_>, key: &str) -> Option<Secret> {
    let Some(node) = f.node(key) else {
        ctx.missing(f, key);
        return None;
    };
    let from_env = matches!(&node.kind, Kind::Scalar(s) if EnvRefs::touches(&s.text));
    if !from_env {
        // Say nothing of the value: it is the password.
        ctx.problem(
            node.line,
            &f.path(key),
            format!(
                "must come from the environment, like \"${{env:{}}}\", not be written in the file",
                env_hint(key)
            ),
        );
        return None;
    }
    ctx.string(f, key).map(Secret::new)
}

fn env_hint(key: &str) -> &'static str {
    if key == "secret" {
        "AMI_SECRET"
    } else {
        "ESL_PASSWORD"
    }
}

/// Two inputs with one name would write the same series: reported at the second.
pub(crate) fn check_unique_names(ctx: &mut Ctx<'_>, inputs: &[(usize, String, NativeInputConfig)]) {
    let mut seen = HashSet::new();
    for (line, path, input) in inputs {
        if !seen.insert(input.name.as_str()) {
            ctx.problem(
                *line,
                path,
                format!(
                    "the name \"{}\" is used by another ami/esl source",
                    input.name
                ),
            );
        }
    }
}
