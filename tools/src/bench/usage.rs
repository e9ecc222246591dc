//! CPU time and peak memory of a process, from the kernel's own accounting
//! (`/proc/<pid>/stat` utime + stime, `/proc/<pid>/status` VmHWM). Linux only.

use anyhow::{Context, bail};
use serde::Serialize;
use std::sync::OnceLock;

/// CPU time (user + system, every thread) a process has used so far, in µs.
pub fn cpu_micros(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat (payfleet bench needs Linux)"))?;
    // The command name may hold spaces; the fields after it are fixed.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the file: utime and stime, in clock ticks.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("unexpected /proc/{pid}/stat: {stat}"))
    };
    Ok((ticks(11)? + ticks(12)?) * 1_000_000 / clock_ticks()?)
}

/// The process exists and has not exited (a zombie has).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        !matches!(state.and_then(|s| s.chars().next()), None | Some('Z' | 'X'))
    })
}

/// Peak resident set size (VmHWM) in KiB.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmHWM in /proc/{pid}/status"))
}

fn clock_ticks() -> anyhow::Result<u64> {
    static TICKS: OnceLock<u64> = OnceLock::new();
    if let Some(t) = TICKS.get() {
        return Ok(*t);
    }
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running getconf CLK_TCK")?;
    let ticks: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if ticks == 0 {
        bail!("getconf CLK_TCK gave no clock tick rate");
    }
    Ok(*TICKS.get_or_init(|| ticks))
}

/// The local RabbitMQ (`beam.smp`) and Redis (`redis-server`) processes, found by name;
/// the nodes of `scripts/cluster` as `rabbitmq-cluster` and `redis-cluster`. They are
/// shared with whatever else runs on the machine, so their CPU over a measurement is an
/// upper bound of what the measured load cost them.
fn shared_services() -> Vec<(String, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<(String, u32)> = dir
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let read =
                |file: &str| std::fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default();
            let holds = |bytes: Vec<u8>, s: &str| String::from_utf8_lossy(&bytes).contains(s);
            let role = match comm.trim() {
                "beam.smp" if holds(read("environ"), "RABBITMQ_NODENAME=rabbit-c") => {
                    "rabbitmq-cluster"
                }
                "beam.smp" => "rabbitmq",
                "redis-server" if holds(read("cmdline"), "[cluster]") => "redis-cluster",
                "redis-server" => "redis",
                _ => return None,
            };
            Some((role.to_owned(), pid))
        })
        .collect();
    found.sort();
    found
}

/// The bench process itself (publisher and results consumer; in `in-process` mode also
/// the gateway and sandbox): it runs on the same cores as what it measures.
fn this_process() -> (String, u32) {
    ("bench".to_owned(), std::process::id())
}

/// One process of the fleet over one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessUsage {
    pub role: String,
    pub pid: u32,
    /// CPU used between the start and the end of the measurement.
    pub cpu_ms: f64,
    /// Peak RSS over the process's life.
    pub peak_rss_mib: f64,
}

/// CPU readings taken before the load, completed after it.
pub struct CpuMeter {
    start: Vec<(String, u32, u64)>,
    /// Processes may come and go (a `rabbitmqctl` is a `beam.smp` too): one that is gone
    /// at either end is left out instead of failing the run.
    lenient: bool,
}

impl CpuMeter {
    /// The fleet's own processes: each must be readable at both ends.
    pub fn start(processes: &[(String, u32)]) -> anyhow::Result<Self> {
        let start = processes
            .iter()
            .map(|(role, pid)| Ok((role.clone(), *pid, cpu_micros(*pid)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(CpuMeter {
            start,
            lenient: false,
        })
    }

    /// The shared RabbitMQ and Redis processes and the bench process itself.
    pub fn shared() -> Self {
        let mut watched = shared_services();
        watched.push(this_process());
        let start = watched
            .into_iter()
            .filter_map(|(role, pid)| Some((role, pid, cpu_micros(pid).ok()?)))
            .collect();
        CpuMeter {
            start,
            lenient: true,
        }
    }

    pub fn finish(self) -> anyhow::Result<Vec<ProcessUsage>> {
        let lenient = self.lenient;
        self.start
            .into_iter()
            .map(|(role, pid, before)| {
                let reading = cpu_micros(pid).and_then(|cpu| Ok((cpu, peak_rss_kib(pid)?)));
                Ok(match reading {
                    Ok((cpu, rss)) => Some(ProcessUsage {
                        cpu_ms: cpu.saturating_sub(before) as f64 / 1000.0,
                        peak_rss_mib: rss as f64 / 1024.0,
                        role,
                        pid,
                    }),
                    Err(_) if lenient => None,
                    Err(e) => return Err(e),
                })
            })
            .filter_map(Result::transpose)
            .collect()
    }
}

/// Splits the bench process's CPU (ms) from the shared services' readings.
pub fn split_bench(mut readings: Vec<ProcessUsage>) -> (f64, Vec<ProcessUsage>) {
    let bench = this_process().0;
    let ms = readings
        .iter()
        .filter(|p| p.role == bench)
        .map(|p| p.cpu_ms)
        .sum();
    readings.retain(|p| p.role != bench);
    (ms, readings)
}

/// CPU of the processes whose role passes `role`, in µs per unit of work.
pub fn cpu_us_per(processes: &[ProcessUsage], role: &str, units: u64) -> f64 {
    let ms: f64 = processes
        .iter()
        .filter(|p| p.role == role || (role == "worker" && p.role.starts_with("worker")))
        .map(|p| p.cpu_ms)
        .sum();
    ms * 1000.0 / units.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(50) {
            std::hint::black_box(spin.elapsed());
        }
        assert!(cpu_micros(pid).unwrap() > 0);
        assert!(peak_rss_kib(pid).unwrap() > 0);
        assert!(alive(pid));
        assert!(!alive(u32::MAX));
    }
}
