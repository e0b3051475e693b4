//! A TCP proxy the test controls, to take "the database" away without touching Postgres.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct TcpProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

struct State {
    up: bool,
    conns: CancellationToken,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            up: true,
            conns: CancellationToken::new(),
        }));
        let stop = CancellationToken::new();
        let (st, stop2) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                    _ = stop2.cancelled() => return,
                };
                let (up, token) = {
                    let s = st.lock().unwrap();
                    (s.up, s.conns.clone())
                };
                if !up {
                    drop(inbound); // refused: the peer sees the connection close at once
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {},
                        _ = token.cancelled() => {},
                    }
                });
            }
        });
        TcpProxy { port, state, stop }
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        let mut s = self.state.lock().unwrap();
        s.up = false;
        s.conns.cancel();
        s.conns = CancellationToken::new();
    }

    pub fn restore(&self) {
        self.state.lock().unwrap().up = true;
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.state.lock().unwrap().conns.cancel();
    }
}
