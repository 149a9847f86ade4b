//! Running storage calls at once (a KV write beside a D1 batch, KV deletes side by side), so a
//! request waits for the slowest of them instead of their sum. Single-threaded, like the Worker runtime.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;

/// Polls `a` and `b` together until both are done.
pub async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                ra = x;
                rb = y;
                Poll::Pending
            }
        }
    })
    .await
}

/// `a`'s output, unless `deadline` finishes first (`None`): a slow call is given up on, not
/// waited for.
pub async fn before<A: Future, D: Future<Output = ()>>(a: A, deadline: D) -> Option<A::Output> {
    let (mut a, mut deadline) = (pin!(a), pin!(deadline));
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Polls every future together until all are done; outputs in order.
pub async fn all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_outputs_in_order() {
        let (a, b) = futures_executor::block_on(both(async { 1 }, async { "two" }));
        assert_eq!((a, b), (1, "two"));
    }

    #[test]
    fn before_gives_up_when_the_deadline_comes_first() {
        let done = futures_executor::block_on(before(async { 7 }, std::future::pending()));
        assert_eq!(done, Some(7));
        let late = futures_executor::block_on(before(std::future::pending::<u8>(), async {}));
        assert_eq!(late, None);
    }

    #[test]
    fn all_outputs_in_order() {
        let out = futures_executor::block_on(all((0..3).map(|i| async move { i * 2 })));
        assert_eq!(out, vec![0, 2, 4]);
    }
}
