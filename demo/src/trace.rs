//! A Chrome/Perfetto trace (JSON trace-event format), one track per thread.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NEXT_TID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static TID: Cell<u64> = const { Cell::new(0) };
}

/// This thread's track id (assigned on first use).
pub fn tid() -> u64 {
    TID.with(|t| {
        if t.get() == 0 {
            t.set(NEXT_TID.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

struct Event {
    name: String,
    cat: &'static str,
    /// 'X' complete or 'i' instant.
    ph: char,
    ts: Duration,
    dur: Duration,
    tid: u64,
    args: Option<(&'static str, u64)>,
}

/// Collects events; [`Tracer::to_json`] renders them.
pub struct Tracer {
    start: Instant,
    events: Mutex<Vec<Event>>,
    names: Mutex<BTreeMap<u64, String>>,
}

impl Tracer {
    /// A tracer whose time 0 is now.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            events: Mutex::new(Vec::new()),
            names: Mutex::new(BTreeMap::new()),
        }
    }

    /// Names the current thread's track (first name wins).
    pub fn name_thread(&self, name: &str) {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names.entry(tid()).or_insert_with(|| name.to_string());
    }

    fn ensure_named(&self) {
        let tid = tid();
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names.entry(tid).or_insert_with(|| {
            std::thread::current()
                .name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("thread {tid}"))
        });
    }

    /// A span on this thread that ended now and lasted `dur`.
    pub fn span_ending_now(
        &self,
        cat: &'static str,
        name: String,
        dur: Duration,
        args: Option<(&'static str, u64)>,
    ) {
        let end = self.start.elapsed();
        self.push(Event {
            name,
            cat,
            ph: 'X',
            ts: end.saturating_sub(dur),
            dur,
            tid: tid(),
            args,
        });
    }

    /// An instant event on this thread.
    pub fn instant(&self, cat: &'static str, name: String) {
        let ts = self.start.elapsed();
        self.push(Event {
            name,
            cat,
            ph: 'i',
            ts,
            dur: Duration::ZERO,
            tid: tid(),
            args: None,
        });
    }

    fn push(&self, event: Event) {
        self.ensure_named();
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// No events yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of tracks (threads with events or a name).
    pub fn tracks(&self) -> usize {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The trace as JSON (`{"traceEvents": [...]}`).
    pub fn to_json(&self) -> String {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(events.len() * 128 + 256);
        out.push_str("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !first {
                out.push_str(",\n");
            }
            first = false;
        };
        sep(&mut out);
        out.push_str(
            "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"lazyrt demo\"}}",
        );
        for (tid, name) in names.iter() {
            sep(&mut out);
            let _ = write!(
                out,
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
                json_string(name)
            );
            sep(&mut out);
            let _ = write!(
                out,
                "{{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":{tid},\"args\":{{\"sort_index\":{tid}}}}}"
            );
        }
        for e in events.iter() {
            sep(&mut out);
            let _ = write!(
                out,
                "{{\"name\":{},\"cat\":\"{}\",\"ph\":\"{}\",\"pid\":1,\"tid\":{},\"ts\":{:.3}",
                json_string(&e.name),
                e.cat,
                e.ph,
                e.tid,
                e.ts.as_secs_f64() * 1e6
            );
            if e.ph == 'X' {
                let _ = write!(out, ",\"dur\":{:.3}", e.dur.as_secs_f64() * 1e6);
            } else {
                out.push_str(",\"s\":\"t\"");
            }
            if let Some((k, v)) = e.args {
                let _ = write!(out, ",\"args\":{{\"{k}\":{v}}}");
            }
            out.push('}');
        }
        out.push_str("\n]}\n");
        out
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
