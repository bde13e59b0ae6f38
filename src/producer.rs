//! A stream fed by a producer task: the shape of every streamed answer
//! (the layer check, PushLayer, PullLayer). The producer sends messages
//! through a bounded channel — so it runs only as fast as the client reads —
//! and its outcome through a oneshot it fills last, so a stream can only end
//! OK when the producer said so: an error ends it with that error's status,
//! and a producer that died without saying ends it INTERNAL.

use std::future::Future;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::error::Error;

/// A streamed answer.
pub type Produced<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Runs `produce` in its own task and returns the stream of what it sends
/// (at most `capacity` messages buffered), ended by its outcome. `what`
/// names the work in the message of a producer that died ("the {what}
/// stopped unexpectedly").
pub fn produced<T, E, F, Fut>(capacity: usize, what: &'static str, produce: F) -> Produced<T>
where
    T: Send + 'static,
    E: Into<Status> + Send + 'static,
    F: FnOnce(mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(capacity);
    let (done, outcome) = oneshot::channel::<Result<(), E>>();
    let work = produce(tx);
    tokio::spawn(async move {
        let _ = done.send(work.await);
    });
    let terminal = futures::stream::once(async move {
        match outcome.await {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(Err(err.into())),
            Err(_) => Some(Err(Error::internal(format!(
                "the {what} stopped unexpectedly; the error has been logged"
            ))
            .to_status())),
        }
    })
    .filter_map(std::future::ready);
    Box::pin(ReceiverStream::new(rx).chain(terminal))
}
