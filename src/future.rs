//! [`ResponseFuture`]: waits for the inner service and records the outcome.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;
use tower::BoxError;

use crate::classify::{classify_error, classify_status};
use crate::error::BackoffError;
use crate::key_buf::KeyBuf;
use crate::registry::{BackoffRegistry, Ticket};

pin_project! {
    /// The response future of [`BackoffService`](crate::BackoffService).
    ///
    /// It resolves to the inner response, to the inner error boxed, or to a
    /// [`BackoffError`] when the request was refused. Dropping it before it completes
    /// records nothing.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Tracked {
            #[pin]
            future: F,
            report: Option<Report>,
        },
        Untracked {
            #[pin]
            future: F,
        },
        Rejected {
            error: Option<BackoffError>,
        },
    }
}

/// Where to record the outcome of an admitted request.
struct Report {
    registry: BackoffRegistry,
    key: KeyBuf,
    ticket: Ticket,
}

impl<F> ResponseFuture<F> {
    pub(crate) fn tracked(
        future: F,
        registry: BackoffRegistry,
        key: KeyBuf,
        ticket: Ticket,
    ) -> Self {
        let report = Some(Report {
            registry,
            key,
            ticket,
        });
        Self {
            state: State::Tracked { future, report },
        }
    }

    pub(crate) fn untracked(future: F) -> Self {
        Self {
            state: State::Untracked { future },
        }
    }

    pub(crate) fn rejected(error: BackoffError) -> Self {
        Self {
            state: State::Rejected { error: Some(error) },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Tracked { future, report } => {
                let result = ready!(future.poll(cx)).map_err(Into::into);
                if let Some(report) = report.take() {
                    report.record(&result);
                }
                Poll::Ready(result)
            }
            StateProj::Untracked { future } => future.poll(cx).map_err(Into::into),
            StateProj::Rejected { error } => {
                let error = error
                    .take()
                    .expect("`ResponseFuture` polled after completion");
                Poll::Ready(Err(error.into()))
            }
        }
    }
}

impl Report {
    fn record<B>(self, result: &Result<Response<B>, BoxError>) {
        let outcome = match result {
            Ok(response) => classify_status(response.status()),
            Err(error) => classify_error(error),
        };
        self.registry
            .record_outcome(&self.key, self.ticket, outcome);
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ResponseFuture");
        match &self.state {
            State::Tracked { report, .. } => {
                let key = report.as_ref().map(|report| &*report.key);
                debug.field("tracked_key", &key)
            }
            State::Untracked { .. } => debug.field("tracked_key", &None::<&str>),
            State::Rejected { error } => debug.field("rejected", error),
        }
        .finish_non_exhaustive()
    }
}
