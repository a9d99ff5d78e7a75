//! The test server as a process, for tests that are not Rust (the dashboard's
//! browser tests):
//!
//! ```text
//! fake-stripe [--port N] [--delay-ms MS] [--webhook-url URL --webhook-secret whsec_...]
//! ```
//!
//! `--delay-ms` makes every answer take that long (a slow Stripe, for benchmarks).
//!
//! Prints its base URL (`http://127.0.0.1:N`) on stdout once it listens, then
//! serves until it is killed. With a webhook URL, the browser confirmations
//! (SetupIntents, PaymentIntents) are reported there as Stripe reports them.

use std::io::Write as _;
use std::process::ExitCode;
use std::thread;

use fake_stripe::FakeStripe;

const USAGE: &str =
    "usage: fake-stripe [--port N] [--delay-ms MS] [--webhook-url URL --webhook-secret SECRET]";

#[derive(Default)]
struct Options {
    port: u16,
    delay_ms: u64,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let port = value()?;
                options.port = port.parse().map_err(|_| format!("not a port: {port}"))?;
            }
            "--delay-ms" => {
                let delay = value()?;
                options.delay_ms = delay
                    .parse()
                    .map_err(|_| format!("not milliseconds: {delay}"))?;
            }
            "--webhook-url" => options.webhook_url = Some(value()?),
            "--webhook-secret" => options.webhook_secret = Some(value()?),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if options.webhook_url.is_some() != options.webhook_secret.is_some() {
        return Err("--webhook-url and --webhook-secret go together".into());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("fake-stripe: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let stripe = FakeStripe::start_on(options.port);
    if options.delay_ms > 0 {
        stripe.set_mode(fake_stripe::Mode::Slow(std::time::Duration::from_millis(
            options.delay_ms,
        )));
    }
    if let (Some(url), Some(secret)) = (&options.webhook_url, &options.webhook_secret) {
        stripe.send_webhooks_to(url, secret);
    }
    // The caller waits for this line: the server listens once it is printed.
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", stripe.base())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    loop {
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn options_are_read() {
        let o = parse(args(&[
            "--port",
            "4242",
            "--webhook-url",
            "http://127.0.0.1:1/api/webhooks/stripe",
            "--webhook-secret",
            "whsec_x",
        ]))
        .unwrap();
        assert_eq!(o.port, 4242);
        assert_eq!(
            o.webhook_url.as_deref(),
            Some("http://127.0.0.1:1/api/webhooks/stripe")
        );
        assert_eq!(parse(args(&[])).unwrap().port, 0);
        assert_eq!(parse(args(&["--delay-ms", "300"])).unwrap().delay_ms, 300);
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(parse(args(&["--port"])).is_err());
        assert!(parse(args(&["--port", "x"])).is_err());
        assert!(parse(args(&["--webhook-url", "http://x"])).is_err());
        assert!(parse(args(&["--verbose"])).is_err());
        assert!(parse(args(&["--delay-ms", "soon"])).is_err());
    }
}
