//! [`ResponseFuture`]: waits for the inner service and records the outcome.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;
use tower::BoxError;

use crate::classify::{Classify, DefaultClassifier};
use crate::judge::Judge;
use crate::key_buf::KeyBuf;
use crate::pending::Pending;
use crate::registry::{BackoffRegistry, Ticket};

pin_project! {
    /// The response future of [`BackoffService`](crate::BackoffService).
    ///
    /// It resolves to the inner response, to the inner error boxed, or to a
    /// [`BackoffError`] when the request was refused. Dropping it before it completes
    /// records nothing.
    pub struct ResponseFuture<F, C = DefaultClassifier> {
        #[pin]
        call: Call<F>,
        // Where to record the outcome; `None` for a request that is not tracked.
        report: Option<Report<C>>,
    }
}

pin_project! {
    #[project = CallProj]
    enum Call<F> {
        Running {
            #[pin]
            future: F,
        },
        Refused {
            // A `BackoffError`, boxed when the call was refused.
            error: Option<BoxError>,
        },
    }
}

/// Where and how to record the outcome of an admitted request.
pub(crate) struct Report<C> {
    pending: Pending,
    judge: Judge<C>,
}

impl<C: Clone> Report<C> {
    pub(crate) fn new(
        registry: &BackoffRegistry,
        key: KeyBuf,
        ticket: Ticket,
        judge: &Judge<C>,
    ) -> Self {
        Self {
            pending: Pending::new(registry, key, ticket),
            judge: judge.clone(),
        }
    }
}

impl<F, C> ResponseFuture<F, C> {
    /// Runs `future`; `report` says where to record its outcome, if anywhere.
    #[inline]
    pub(crate) fn running(future: F, report: Option<Report<C>>) -> Self {
        Self {
            call: Call::Running { future },
            report,
        }
    }

    pub(crate) fn rejected(error: BoxError) -> Self {
        Self {
            call: Call::Refused { error: Some(error) },
            report: None,
        }
    }
}

impl<F, C, B, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    C: Classify,
{
    type Output = Result<Response<B>, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.call.project() {
            CallProj::Running { future } => {
                // Judged where it is returned from, so that it is not copied there.
                let output = Poll::Ready(ready!(future.poll(cx)).map_err(Into::into));
                if let (Some(report), Poll::Ready(result)) = (this.report, &output) {
                    report.record(result);
                }
                output
            }
            CallProj::Refused { error } => {
                let error = error
                    .take()
                    .expect("`ResponseFuture` polled after completion");
                Poll::Ready(Err(error))
            }
        }
    }
}

impl<C: Classify> Report<C> {
    /// Records the outcome; a later call records nothing.
    #[inline]
    fn record<B>(&mut self, result: &Result<Response<B>, BoxError>) {
        let verdict = match result {
            Ok(response) => self.judge.response(response.status(), response.headers()),
            Err(error) => self.judge.error(&**error),
        };
        verdict.record(&mut self.pending);
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ResponseFuture");
        let key = self.report.as_ref().map(|report| report.pending.key());
        debug.field("tracked_key", &key);
        if let Call::Refused { error } = &self.call {
            debug.field("rejected", error);
        }
        debug.finish_non_exhaustive()
    }
}
