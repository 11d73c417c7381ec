//! Where messages go: email over SMTP (lettre), or as `.eml` files under the data dir when no
//! SMTP server is set; SMS through a provider (a simulated one, with a real provider's rules).

use std::{path::PathBuf, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};

use crate::templates::Email;

/// Why a send failed, and whether another try could succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server or provider is down or said "later" (4xx): try again.
    #[error("{0}")]
    Temporary(String),
    /// It will never go (a 5xx, an address that cannot be, a message too long): give up now.
    #[error("{0}")]
    Permanent(String),
}

/// Email out: an SMTP server, or files.
pub enum Mailer {
    Smtp { transport: AsyncSmtpTransport<Tokio1Executor>, describe: String },
    Files(PathBuf),
}

/// `smtp://user:pass@host:587` takes STARTTLS (required) unless the URL says `?tls=...`;
/// `smtps://` is TLS from the start; plain `smtp://` on another port is for a relay on this
/// machine or a test server.
fn with_tls_default(url: &str) -> String {
    let submission = url.starts_with("smtp://")
        && !url.contains("tls=")
        && url
            .split('@')
            .next_back()
            .is_some_and(|rest| rest.split(['/', '?']).next().is_some_and(|h| h.ends_with(":587")));
    if submission {
        let joiner = if url.contains('?') { '&' } else { '?' };
        format!("{url}{joiner}tls=required")
    } else {
        url.to_owned()
    }
}

/// What a URL is, for logs: without its password.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl Mailer {
    pub fn smtp(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&with_tls_default(url))
            .map_err(|e| anyhow::anyhow!("MARQUEE_SMTP_URL: {e}"))?
            .timeout(Some(timeout))
            .build();
        Ok(Mailer::Smtp { transport, describe: redacted(url) })
    }

    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp { describe, .. } => format!("SMTP {describe}"),
            Mailer::Files(dir) => format!(".eml files in {}", dir.display()),
        }
    }

    /// Send one email; the id is the server's answer (or the file written).
    pub async fn send(
        &self,
        from: &Mailbox,
        to: &str,
        name: &str,
        mail: &Email,
    ) -> Result<String, SendError> {
        let to: Mailbox = format!("{name} <{to}>")
            .parse()
            .or_else(|_| to.parse())
            .map_err(|e| SendError::Permanent(format!("not an address: {to}: {e}")))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
            .map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))?;
        match self {
            Mailer::Smtp { transport, .. } => match transport.send(message).await {
                Ok(response) => Ok(response.message().collect::<Vec<_>>().join(" ")),
                Err(e) if e.is_permanent() => {
                    Err(SendError::Permanent(format!("the SMTP server refused it: {e}")))
                }
                Err(e) => Err(SendError::Temporary(format!("SMTP: {e}"))),
            },
            Mailer::Files(dir) => {
                let name = format!("{}.eml", uuid::Uuid::now_v7());
                let path = dir.join(&name);
                let bytes = message.formatted();
                // Written under a temporary name and renamed, so a reader never sees half a file.
                let partial = dir.join(format!(".{name}.part"));
                let write = async {
                    tokio::fs::create_dir_all(dir).await?;
                    tokio::fs::write(&partial, &bytes).await?;
                    tokio::fs::rename(&partial, &path).await
                };
                write.await.map_err(|e| SendError::Temporary(format!("writing {}: {e}", path.display())))?;
                Ok(name)
            }
        }
    }
}

/// An SMS provider: sends a text, answers with its message id.
#[async_trait::async_trait]
pub trait SmsProvider: Send + Sync {
    async fn send(&self, to: &str, body: &str) -> Result<String, SendError>;
}

/// Characters of the GSM 03.38 default alphabet (one septet each; the extension table's take
/// two). A text with any other character is sent as UCS-2.
const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{000C}";

/// How many segments a text takes, as carriers count them: 160 GSM-7 septets in one, 153 per
/// part when split; 70 UCS-2 characters in one, 67 per part (code points outside the BMP take
/// two).
pub fn segments(body: &str) -> usize {
    let gsm = body.chars().all(|c| GSM7.contains(c) || GSM7_EXTENDED.contains(c));
    let (units, single, part) = if gsm {
        (body.chars().map(|c| if GSM7_EXTENDED.contains(c) { 2 } else { 1 }).sum::<usize>(), 160, 153)
    } else {
        (body.encode_utf16().count(), 70, 67)
    };
    if units <= single { 1 } else { units.div_ceil(part) }
}

/// The longest text sent: carriers reassemble at most 10 parts reliably.
pub const MAX_SEGMENTS: usize = 10;

/// A provider that behaves like a real one in test mode, with its magic numbers: `+15005550001`
/// is not a valid number, `+15005550002` cannot be routed, `+15005550009` cannot receive SMS
/// (all permanent), `+15005550006` times out (temporary); anything else is delivered. A text
/// over 10 segments is refused. Nothing leaves the machine.
pub struct SimulatedSms;

#[async_trait::async_trait]
impl SmsProvider for SimulatedSms {
    async fn send(&self, to: &str, body: &str) -> Result<String, SendError> {
        if body.is_empty() {
            return Err(SendError::Permanent("21602: the message body is empty".into()));
        }
        let n = segments(body);
        if n > MAX_SEGMENTS {
            return Err(SendError::Permanent(format!(
                "30019: the message is {n} segments, over {MAX_SEGMENTS}"
            )));
        }
        match to {
            "+15005550001" => Err(SendError::Permanent("21211: not a valid phone number".into())),
            "+15005550002" => Err(SendError::Permanent("21612: the number cannot be routed to".into())),
            "+15005550009" => Err(SendError::Permanent("21614: the number cannot receive SMS".into())),
            "+15005550006" => Err(SendError::Temporary("the provider timed out".into())),
            _ => Ok(format!("SM{}", uuid::Uuid::new_v4().simple())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn submission_urls_take_starttls() {
        assert_eq!(
            with_tls_default("smtp://u:p@mail.example.com:587"),
            "smtp://u:p@mail.example.com:587?tls=required"
        );
        assert_eq!(
            with_tls_default("smtp://mail.example.com:587?tls=opportunistic"),
            "smtp://mail.example.com:587?tls=opportunistic"
        );
        assert_eq!(with_tls_default("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
        assert_eq!(with_tls_default("smtps://u:p@mail.example.com"), "smtps://u:p@mail.example.com");
        assert_eq!(redacted("smtp://u:secret@mail.example.com:587"), "smtp://…@mail.example.com:587");
        assert!(Mailer::smtp("smtp://u:p@mail.example.com:587", Duration::from_secs(1)).is_ok());
        assert!(Mailer::smtp("ftp://x", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn segments_are_counted_as_carriers_count_them() {
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        assert_eq!(segments(&"€".repeat(80)), 1, "extension characters take two septets");
        assert_eq!(segments(&"€".repeat(81)), 2);
        assert_eq!(segments(&"é".repeat(160)), 1, "é is in GSM-7");
        assert_eq!(segments(&"ł".repeat(70)), 1, "ł is not: UCS-2");
        assert_eq!(segments(&"ł".repeat(71)), 2);
        assert_eq!(segments(&"🎬".repeat(35)), 1, "two UTF-16 units each");
    }

    #[tokio::test]
    async fn the_simulated_provider_fails_like_a_real_one() {
        let sms = SimulatedSms;
        assert!(sms.send("+15551234567", "Your tickets").await.is_ok_and(|id| id.starts_with("SM")));
        assert!(matches!(sms.send("+15005550001", "x").await, Err(SendError::Permanent(_))));
        assert!(matches!(sms.send("+15005550006", "x").await, Err(SendError::Temporary(_))));
        assert!(matches!(sms.send("+15551234567", &"ł".repeat(700)).await, Err(SendError::Permanent(_))));
        assert!(matches!(sms.send("+15551234567", "").await, Err(SendError::Permanent(_))));
    }
}
