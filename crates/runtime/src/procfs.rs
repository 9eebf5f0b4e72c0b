//! What /proc says about processes: liveness (zombies are dead), process
//! groups, start times (to tell a reused PID apart) and listening sockets.

use std::collections::{HashMap, HashSet};
use std::fs;

/// The fields of `/proc/PID/stat` that Orchestra uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Process state letter (R, S, D, Z, X, ...).
    pub state: char,
    /// Parent PID.
    pub ppid: i32,
    /// Process group id.
    pub pgrp: i32,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Parse the text of a `/proc/PID/stat` file.
pub fn parse_stat(text: &str) -> Option<Stat> {
    // The command name is in parentheses and may itself contain spaces or ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

/// Read `/proc/PID/stat`.
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether the process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Live (non-zombie) processes in process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            stat(*pid).is_some_and(|s| s.pgrp == pgid && s.state != 'Z' && s.state != 'X')
        })
        .collect()
}

/// CPU time and resident memory of one process, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// User plus system time, in clock ticks (`USER_HZ`).
    pub cpu_ticks: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
}

/// The process group and usage in the text of a `/proc/PID/stat` file.
pub fn parse_usage(text: &str) -> Option<(i32, Usage)> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime), 15 (stime) and 24 (rss) of proc(5), counted from `state` (3).
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let rss: i64 = f.get(21)?.parse().ok()?;
    Some((
        f.get(2)?.parse().ok()?,
        Usage {
            cpu_ticks: utime + stime,
            rss_pages: u64::try_from(rss).unwrap_or(0),
        },
    ))
}

/// Clock ticks per second of `/proc`'s times, and bytes per page of its sizes (read once).
pub fn units() -> (u64, u64) {
    use nix::unistd::{SysconfVar, sysconf};
    static UNITS: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    *UNITS.get_or_init(|| {
        let get = |v| {
            sysconf(v)
                .ok()
                .flatten()
                .and_then(|n| u64::try_from(n).ok())
        };
        // Linux fixes USER_HZ at 100 and the page at 4 KiB where sysconf cannot say.
        (
            get(SysconfVar::CLK_TCK).unwrap_or(100),
            get(SysconfVar::PAGE_SIZE).unwrap_or(4096),
        )
    })
}

/// The summed usage of the live processes of each of `pgids` (a replica's process group: its
/// shim and what that runs), from one pass over `/proc`. Groups with no process are left out.
pub fn group_usage(pgids: &[i32]) -> HashMap<i32, Usage> {
    let mut out: HashMap<i32, Usage> = HashMap::new();
    if pgids.is_empty() {
        return out;
    }
    let wanted: HashSet<i32> = pgids.iter().copied().collect();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((pgrp, u)) = parse_usage(&text)
            && wanted.contains(&pgrp)
        {
            let sum = out.entry(pgrp).or_default();
            sum.cpu_ticks += u.cpu_ticks;
            sum.rss_pages += u.rss_pages;
        }
    }
    out
}

/// TCP ports in LISTEN state owned by any of `pids`.
pub fn listening_ports(pids: &[i32]) -> Vec<u16> {
    let mut inodes = HashSet::new();
    for pid in pids {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path())
                && let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse::<u64>().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    let mut ports: Vec<u16> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| fs::read_to_string(f).ok())
        .flat_map(|table| parse_listeners(&table))
        .filter(|(_, inode)| inodes.contains(inode))
        .map(|(port, _)| port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// (port, inode) of each LISTEN row in a /proc/net/tcp table.
pub fn parse_listeners(table: &str) -> Vec<(u16, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is "HEXIP:HEXPORT"; st 0A is LISTEN.
            if f.get(3)? != &"0A" {
                return None;
            }
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let inode = f.get(9)?.parse().ok()?;
            Some((port, inode))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_survives_odd_command_names() {
        let text = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 1234);
        assert_eq!(s.start_ticks, 987654);
    }

    #[test]
    fn usage_is_cpu_ticks_and_rss_pages() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss
        let text = "42 (a b) S 1 40 40 0 -1 0 0 0 0 0 7 5 0 0 20 0 1 0 99 123456 321 more";
        let (pgrp, u) = parse_usage(text).unwrap();
        assert_eq!(pgrp, 40);
        assert_eq!(u.cpu_ticks, 12);
        assert_eq!(u.rss_pages, 321);
        assert!(parse_usage("42 (x) S 1").is_none());
    }

    #[test]
    fn group_usage_of_this_process_is_read_from_proc() {
        let me = stat(std::process::id() as i32).unwrap().pgrp;
        let u = group_usage(&[me, -5]);
        assert!(u.get(&me).is_some_and(|u| u.rss_pages > 0), "{u:?}");
        assert!(!u.contains_key(&-5));
        let (hz, page) = units();
        assert!(hz > 0 && page >= 4096, "{hz} {page}");
    }

    #[test]
    fn listeners_are_parsed_from_the_tcp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_listeners(table), [(8080, 4242)]);
    }

    #[test]
    fn this_process_is_alive_and_in_its_group() {
        let me = std::process::id() as i32;
        assert!(alive(me));
        let s = stat(me).unwrap();
        assert!(group_members(s.pgrp).contains(&me));
    }

    #[test]
    fn finds_our_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        assert!(listening_ports(&[me]).contains(&port));
    }
}
