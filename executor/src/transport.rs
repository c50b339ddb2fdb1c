//! Channels between controller and executor, and the one parser both sides
//! use for where to find each other: `fd:N` (an inherited socket, as
//! `spawn` passes it), `unix:PATH` or `tcp:HOST:PORT`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

/// A connected, bidirectional byte stream.
#[derive(Debug)]
pub enum Channel {
    /// A Unix socket (also what a spawned executor inherits).
    Unix(UnixStream),
    /// A TCP connection (`TCP_NODELAY` set: frames are latency-bound).
    Tcp(TcpStream),
}

impl Channel {
    /// A second handle to the same stream (one side reads, one writes).
    pub fn try_clone(&self) -> io::Result<Channel> {
        Ok(match self {
            Channel::Unix(s) => Channel::Unix(s.try_clone()?),
            Channel::Tcp(s) => Channel::Tcp(s.try_clone()?),
        })
    }

    /// Shuts both directions (wakes a reader blocked on the stream).
    pub fn shutdown(&self) {
        let _ = match self {
            Channel::Unix(s) => s.shutdown(Shutdown::Both),
            Channel::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }

    fn tcp(stream: TcpStream) -> io::Result<Channel> {
        stream.set_nodelay(true)?;
        Ok(Channel::Tcp(stream))
    }
}

impl Channel {
    fn raw_fd(&self) -> RawFd {
        match self {
            Channel::Unix(s) => s.as_raw_fd(),
            Channel::Tcp(s) => s.as_raw_fd(),
        }
    }

    /// Blocks until a read would not block (input, end of stream or an
    /// error), without reading anything: the connection's reading threads
    /// wait here outside the read lock, so a thread that is waiting for a
    /// reply may take its turn reading in between.
    pub fn wait_readable(&self) -> io::Result<()> {
        let mut poll = libc::pollfd {
            fd: self.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd, for this channel's open socket.
            let n = unsafe { libc::poll(&mut poll, 1, -1) };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Sends what it can of `buf` without blocking: `Ok(0)` when the
    /// socket's buffer is full.
    pub fn send_nonblocking(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is valid for `buf.len()` bytes; the fd is this
            // channel's open socket.
            let n = unsafe {
                libc::send(
                    self.raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(e),
            }
        }
    }

    /// Whether at least `bytes` bytes (at most 64) are waiting, or the
    /// stream ended or failed (a read then reports which). Never blocks,
    /// reads nothing.
    pub fn has_input(&self, bytes: usize) -> bool {
        let mut peeked = [0u8; 64];
        let bytes = bytes.clamp(1, peeked.len());
        // SAFETY: `peeked` is valid for `bytes` bytes; MSG_PEEK leaves
        // them in the socket, MSG_DONTWAIT keeps the call from blocking.
        let n = unsafe {
            libc::recv(
                self.raw_fd(),
                peeked.as_mut_ptr().cast(),
                bytes,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n == 0 {
            return true; // the end of the stream
        }
        if n > 0 {
            return n as usize >= bytes;
        }
        let kind = io::Error::last_os_error().kind();
        !matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
    }
}

impl Read for Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Channel::Unix(s) => s.read(buf),
            Channel::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Channel {
    /// `send(MSG_NOSIGNAL)`: a peer gone mid-write is an error here, never
    /// a SIGPIPE (a controller embedded in a host that does not ignore
    /// SIGPIPE would be killed).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.raw_fd();
        loop {
            // SAFETY: `buf` is valid for `buf.len()` bytes; the fd is this
            // channel's open socket.
            let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where a controller and an executor meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionSpec {
    /// `fd:N`: an inherited connected socket.
    Fd(RawFd),
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `tcp:HOST:PORT` (port 0 when listening: any free port).
    Tcp(String),
}

/// A spec that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad connection spec {spec:?}: {reason} (expected fd:N, unix:PATH or tcp:HOST:PORT)")]
pub struct SpecError {
    /// The text given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ConnectionSpec {
    /// Parses `fd:N`, `unix:PATH` or `tcp:HOST:PORT`.
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        let error = |reason| SpecError {
            spec: spec.to_string(),
            reason,
        };
        let (scheme, rest) = spec.split_once(':').ok_or(error("no scheme"))?;
        match scheme {
            "fd" => rest
                .parse::<RawFd>()
                .ok()
                .filter(|fd| *fd >= 0)
                .map(ConnectionSpec::Fd)
                .ok_or(error("the fd is not a non-negative number")),
            "unix" if !rest.is_empty() => Ok(ConnectionSpec::Unix(rest.into())),
            "unix" => Err(error("empty path")),
            "tcp" => {
                let (host, port) = rest.rsplit_once(':').ok_or(error("no port"))?;
                if host.is_empty() || port.parse::<u16>().is_err() {
                    return Err(error("host or port is not valid"));
                }
                Ok(ConnectionSpec::Tcp(rest.to_string()))
            }
            _ => Err(error("unknown scheme")),
        }
    }

    /// Connects to a listening peer (or adopts an inherited socket).
    pub fn connect(&self) -> io::Result<Channel> {
        match self {
            ConnectionSpec::Fd(fd) => {
                // The fd must be a socket: check before adopting it.
                let mut kind: libc::c_int = 0;
                let mut len = size_of::<libc::c_int>() as libc::socklen_t;
                // SAFETY: getsockopt writes at most `len` bytes into `kind`.
                let rc = unsafe {
                    libc::getsockopt(
                        *fd,
                        libc::SOL_SOCKET,
                        libc::SO_TYPE,
                        (&mut kind as *mut libc::c_int).cast(),
                        &mut len,
                    )
                };
                if rc != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("fd {fd} is not a socket: {}", io::Error::last_os_error()),
                    ));
                }
                // SAFETY: the fd is an open socket this process was given to
                // own (by the spawning controller); nothing else uses it.
                Ok(Channel::Unix(unsafe { UnixStream::from_raw_fd(*fd) }))
            }
            ConnectionSpec::Unix(path) => Ok(Channel::Unix(UnixStream::connect(path)?)),
            ConnectionSpec::Tcp(addr) => Channel::tcp(TcpStream::connect(addr)?),
        }
    }

    /// Listens (a Unix socket path must not exist yet).
    pub fn listen(&self) -> io::Result<Listener> {
        match self {
            ConnectionSpec::Fd(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot listen on fd:N (use it with --connect)",
            )),
            ConnectionSpec::Unix(path) => {
                Ok(Listener::Unix(UnixListener::bind(path)?, path.clone()))
            }
            ConnectionSpec::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr)?)),
        }
    }
}

impl fmt::Display for ConnectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionSpec::Fd(fd) => write!(f, "fd:{fd}"),
            ConnectionSpec::Unix(path) => write!(f, "unix:{}", path.display()),
            ConnectionSpec::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// On a path (removed when the listener is dropped).
    Unix(UnixListener, PathBuf),
    /// On a TCP port.
    Tcp(TcpListener),
}

impl Listener {
    /// Where peers connect (with the actual port for `tcp:...:0`).
    pub fn local_spec(&self) -> io::Result<ConnectionSpec> {
        Ok(match self {
            Listener::Unix(_, path) => ConnectionSpec::Unix(path.clone()),
            Listener::Tcp(l) => ConnectionSpec::Tcp(l.local_addr()?.to_string()),
        })
    }

    /// Waits for one peer.
    pub fn accept(&self) -> io::Result<Channel> {
        match self {
            Listener::Unix(l, _) => Ok(Channel::Unix(l.accept()?.0)),
            Listener::Tcp(l) => Channel::tcp(l.accept()?.0),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_say_why_not() {
        assert_eq!(ConnectionSpec::parse("fd:3"), Ok(ConnectionSpec::Fd(3)));
        assert_eq!(
            ConnectionSpec::parse("tcp:127.0.0.1:0"),
            Ok(ConnectionSpec::Tcp("127.0.0.1:0".into()))
        );
        assert_eq!(
            ConnectionSpec::parse("unix:/tmp/x"),
            Ok(ConnectionSpec::Unix("/tmp/x".into()))
        );
        for bad in [
            "",
            "fd:-1",
            "fd:x",
            "unix:",
            "tcp:host",
            "tcp::1",
            "udp:1:2",
            "tcp:h:99999",
        ] {
            let e = ConnectionSpec::parse(bad).unwrap_err();
            assert!(e.to_string().contains("expected fd:N"), "{e}");
        }
    }
}
