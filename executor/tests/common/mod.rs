//! Shared by the out-of-process suites: starting executors every way a
//! controller can reach one, a small Cranelift program, and a watchdog.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use cranelift_codegen::ir::{AbiParam, Function, InstBuilder, UserFuncName, types::I64};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use lazyrt::{ConnectionSpec, ExecutorProcess, RemoteExecutor, Session};
use lazyrt_cranelift::{FuncId, LazyJit};

/// The executor binary under test.
pub fn executor_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lazyrt-executor")
}

/// How the controller reaches the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Spawned with an inherited socket pair.
    Spawn,
    /// `--listen unix:PATH`.
    Unix,
    /// `--listen tcp:127.0.0.1:0`.
    Tcp,
}

/// A running executor and the controller's handle on it.
pub struct Remote {
    pub executor: Arc<RemoteExecutor>,
    /// The executor process when this test started it with `--listen`
    /// (a spawned one is owned by the `RemoteExecutor`).
    pub listening_child: Option<Child>,
}

impl Remote {
    pub fn session(&self) -> Session {
        Session::builder().executor(self.executor.clone()).build()
    }

    pub fn dyn_executor(&self) -> Arc<dyn ExecutorProcess> {
        self.executor.clone()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.executor.shut_down(Duration::from_secs(5));
        if let Some(child) = &mut self.listening_child {
            let _ = wait_with_timeout(child, Duration::from_secs(10));
        }
    }
}

/// Starts `lazyrt-executor --listen SPEC`, returning the child (stdout
/// piped) and the spec it reports listening on.
pub fn start_listening(spec: &str, stderr: Stdio) -> (Child, ConnectionSpec) {
    let mut child = Command::new(executor_bin())
        .args(["--listen", spec])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start lazyrt-executor");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the listening line");
    let local = line
        .trim()
        .strip_prefix("lazyrt-executor listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, ConnectionSpec::parse(local).unwrap())
}

/// A fresh socket path.
pub fn socket_path(tag: &str) -> String {
    let dir = std::env::temp_dir();
    format!(
        "{}/lazyrt-{tag}-{}-{}.sock",
        dir.display(),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

pub fn remote(transport: Transport) -> Remote {
    match transport {
        Transport::Spawn => Remote {
            executor: Arc::new(RemoteExecutor::spawn(executor_bin()).expect("spawn")),
            listening_child: None,
        },
        Transport::Unix | Transport::Tcp => {
            let spec = match transport {
                Transport::Unix => format!("unix:{}", socket_path("remote")),
                _ => "tcp:127.0.0.1:0".to_string(),
            };
            let (child, local) = start_listening(&spec, Stdio::inherit());
            Remote {
                executor: Arc::new(RemoteExecutor::connect(&local).expect("connect")),
                listening_child: Some(child),
            }
        }
    }
}

pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `f`, failing the test (instead of hanging it) after `secs`.
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("hung: no result after {secs} s"),
    }
}

/// `f0(x) = x + 1`, `fi(x) = f(i-1)(x) * 3 + i` (wrapping): each function
/// calls the one before, so calling the last compiles all of them, one
/// first call each.
pub fn chain(jit: &LazyJit, n: usize) -> Vec<FuncId> {
    let mut sig = jit.make_signature();
    sig.params.push(AbiParam::new(I64));
    sig.returns.push(AbiParam::new(I64));
    let ids: Vec<FuncId> = (0..n)
        .map(|i| jit.declare_function(&format!("f{i}"), sig.clone()).unwrap())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| ids[p]);
        jit.define_function_with(*id, move |jit, id| {
            let mut func =
                Function::with_name_signature(UserFuncName::default(), jit.signature(id)?);
            let callee = previous
                .map(|p| jit.declare_func_in_func(p, &mut func))
                .transpose()?;
            let mut fctx = FunctionBuilderContext::new();
            let mut b = FunctionBuilder::new(&mut func, &mut fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            b.seal_block(entry);
            let x = b.block_params(entry)[0];
            let y = match callee {
                None => {
                    let one = b.ins().iconst(I64, 1);
                    b.ins().iadd(x, one)
                }
                Some(callee) => {
                    let call = b.ins().call(callee, &[x]);
                    let r = b.inst_results(call)[0];
                    let three = b.ins().iconst(I64, 3);
                    let r = b.ins().imul(r, three);
                    let k = b.ins().iconst(I64, i as i64);
                    b.ins().iadd(r, k)
                }
            };
            b.ins().return_(&[y]);
            b.finalize(jit.isa().frontend_config());
            Ok(func)
        })
        .unwrap();
    }
    jit.finalize_definitions().unwrap();
    ids
}

/// What `chain(n)`'s last function returns for `x`.
pub fn chain_expected(n: usize, x: u64) -> u64 {
    let mut v = x.wrapping_add(1);
    for i in 1..n {
        v = v.wrapping_mul(3).wrapping_add(i as u64);
    }
    v
}

/// An executor listening on a fresh Unix socket with its stderr captured,
/// for tests that expect it to die and read why.
pub struct Watched {
    pub executor: Arc<RemoteExecutor>,
    child: Child,
}

pub fn watched(tag: &str) -> Watched {
    let path = socket_path(tag);
    let (mut child, local) = start_listening(&format!("unix:{path}"), Stdio::piped());
    drop(child.stdout.take());
    Watched {
        executor: Arc::new(RemoteExecutor::connect(&local).expect("connect")),
        child,
    }
}

impl Watched {
    pub fn session(&self) -> Session {
        Session::builder().executor(self.executor.clone()).build()
    }

    /// Waits (bounded) for the executor to exit; its status and stderr.
    pub fn exit(mut self) -> (std::process::ExitStatus, String) {
        use std::io::Read;
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .expect("stderr is piped")
            .read_to_string(&mut stderr)
            .expect("read stderr");
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(10))
            .expect("the executor must exit");
        (status, stderr)
    }
}
