//! [`ResponseFuture`]: waits for the inner service and records the outcome.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;
use tower::BoxError;

use crate::classify::{Classify, DefaultClassifier};
use crate::error::BackoffError;
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
        state: State<F, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Tracked {
            #[pin]
            future: F,
            report: Option<Report<C>>,
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
            pending: Pending::new(registry.clone(), key, ticket),
            judge: judge.clone(),
        }
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn tracked(future: F, report: Report<C>) -> Self {
        let report = Some(report);
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

impl<F, C, B, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    C: Classify,
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

impl<C: Classify> Report<C> {
    fn record<B>(self, result: &Result<Response<B>, BoxError>) {
        let verdict = match result {
            Ok(response) => {
                let registry = self.pending.registry();
                self.judge
                    .response(response.status(), response.headers(), registry)
            }
            Err(error) => self.judge.error(&**error),
        };
        verdict.record(self.pending);
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ResponseFuture");
        match &self.state {
            State::Tracked { report, .. } => {
                let key = report.as_ref().map(|report| report.pending.key());
                debug.field("tracked_key", &key)
            }
            State::Untracked { .. } => debug.field("tracked_key", &None::<&str>),
            State::Rejected { error } => debug.field("rejected", error),
        }
        .finish_non_exhaustive()
    }
}
