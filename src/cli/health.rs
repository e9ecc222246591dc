//! `payfleet health TARGET`: asks a payfleet process's ops listener whether it is ready
//! (`/readyz`), for container healthchecks: the image has no curl. Exit 0 when ready,
//! 1 otherwise, with the reason on stderr.

use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// A port on this host (`9100`), or a URL (`http://worker:9100`, `/readyz` added
    /// when it has no path).
    target: String,
    /// How long to wait for the answer, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
}

/// The URL a target names.
fn readyz_url(target: &str) -> Result<reqwest::Url, String> {
    if let Ok(port) = target.parse::<u16>() {
        return Ok(format!("http://127.0.0.1:{port}/readyz")
            .parse()
            .expect("a valid URL"));
    }
    let mut url = reqwest::Url::parse(target)
        .map_err(|e| format!("{target} is neither a port nor a URL ({e})"))?;
    if url.path() == "/" {
        url.set_path("/readyz");
    }
    Ok(url)
}

pub async fn run(args: Args) -> ExitCode {
    let url = match readyz_url(&args.target) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("payfleet health: {e}");
            return ExitCode::from(2);
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .build()
        .expect("an HTTP client without TLS settings builds");
    match client.get(url.clone()).send().await {
        Ok(answer) if answer.status().is_success() => ExitCode::SUCCESS,
        Ok(answer) => {
            eprintln!("payfleet health: {url} answered {}", answer.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("payfleet health: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::readyz_url;

    #[test]
    fn a_port_or_a_url_names_readyz() {
        let url = |t: &str| readyz_url(t).map(|u| u.to_string());
        assert_eq!(url("9100").unwrap(), "http://127.0.0.1:9100/readyz");
        assert_eq!(
            url("http://worker:9100").unwrap(),
            "http://worker:9100/readyz"
        );
        assert_eq!(
            url("http://gw:9101/healthz").unwrap(),
            "http://gw:9101/healthz"
        );
        assert!(
            url("worker")
                .unwrap_err()
                .contains("neither a port nor a URL")
        );
        assert!(url("99999").is_err());
    }
}
