//! Hostile input never panics: arbitrary URIs through the key function and the layer,
//! and configuration at its extremes.

use std::time::Duration;

use http::header::{HOST, RETRY_AFTER};
use http::{Request, Response, StatusCode, Uri};
use proptest::prelude::*;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use url_backoff_registry::{
    authority_key, BackoffLayer, BackoffRegistry, ConfigError, ManualClock, Rule,
};

/// Authority-like text: host characters, digits, and the separators that matter.
fn authority_text() -> impl Strategy<Value = String> {
    let userinfo = r"([a-zA-Z0-9.\-_~%!$&'()*+,;=]{0,8}@)?";
    let host = r"(\[[0-9a-fA-F:.%vV]{0,40}\]|[a-zA-Z0-9.\-%]{0,20})";
    let port = r"(:[0-9]{0,8})?";
    proptest::string::string_regex(&format!("{userinfo}{host}{port}")).expect("valid regex")
}

fn scheme() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("http"),
        Just("https"),
        Just("ws"),
        Just("wss"),
        Just("ftp")
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_parsable_uri_gets_a_sane_key_or_none(text in any::<String>()) {
        if let Ok(uri) = text.parse::<Uri>() {
            check_key(&uri);
        }
    }

    #[test]
    fn authorities_with_odd_parts_get_a_sane_key_or_none(
        scheme in scheme(),
        authority in authority_text(),
    ) {
        if let Ok(uri) = format!("{scheme}://{authority}/path?q=1").parse::<Uri>() {
            check_key(&uri);
        }
    }

    #[test]
    fn the_layer_never_panics_on_odd_uris(
        scheme in scheme(),
        authority in authority_text(),
    ) {
        let Ok(uri) = format!("{scheme}://{authority}/").parse::<Uri>() else {
            return Ok(());
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let registry = BackoffRegistry::builder().threshold(1).build().unwrap();
        let failing = tower::service_fn(|_: Request<()>| async {
            let mut response = Response::new(());
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok::<_, BoxError>(response)
        });
        let mut service = ServiceBuilder::new()
            .layer(BackoffLayer::new(registry.clone()))
            .service(failing);

        runtime.block_on(async {
            for _ in 0..2 {
                let request = Request::get(uri.clone()).body(()).unwrap();
                let _ = service.ready().await.unwrap().call(request).await;
            }
        });

        let expected: Vec<String> = authority_key(&uri).map(|key| key.into_owned()).into_iter()
            .collect();
        prop_assert_eq!(registry.keys(), expected);
    }
}

/// A key never carries userinfo or upper case, and normalising it again changes
/// nothing.
fn check_key(uri: &Uri) {
    let Some(key) = authority_key(uri) else {
        return;
    };

    assert!(!key.is_empty(), "{uri}");
    assert!(!key.contains('@'), "userinfo in the key of {uri}: {key}");
    assert!(
        !key.bytes().any(|byte| byte.is_ascii_uppercase()),
        "{uri}: {key}"
    );

    let again: Uri = format!("{}://{key}/", uri.scheme_str().unwrap_or("http"))
        .parse()
        .unwrap_or_else(|error| panic!("the key {key} of {uri} is not an authority: {error}"));
    assert_eq!(authority_key(&again).as_deref(), Some(&*key), "{uri}");
}

/// Arbitrary header bytes: everything `HeaderValue` accepts, and more that it rejects.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::string::string_regex(r"[ \t]*[0-9]{0,25}[ \t]*")
            .unwrap()
            .prop_map(String::into_bytes),
        proptest::string::string_regex(concat!(
            r"(Mon|Tue|Sun|Sunday|Monday), ?[0-9]{1,2}[ -](Nov|Dec|Jan)[ -][0-9]{2,4} ",
            r"[0-9:]{8}( GMT)?"
        ))
        .unwrap()
        .prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn odd_host_headers_get_a_sane_key_or_none(
        host in header_bytes(),
        authority in authority_text(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let registry = BackoffRegistry::builder().threshold(1).build().unwrap();
        let failing = tower::service_fn(|_: Request<()>| async {
            let mut response = Response::new(());
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok::<_, BoxError>(response)
        });
        let mut service = ServiceBuilder::new()
            .layer(BackoffLayer::new(registry.clone()).host_fallback(true))
            .service(failing);

        for host in [host, authority.into_bytes()] {
            let Ok(value) = http::HeaderValue::from_bytes(&host) else {
                continue;
            };
            let request = Request::get("/origin-form").header(HOST, value).body(()).unwrap();
            runtime.block_on(async {
                let _ = service.ready().await.unwrap().call(request).await;
            });
        }

        for key in registry.keys() {
            let again: Uri = format!("http://{key}/").parse().unwrap();
            prop_assert!(!key.contains('@'));
            prop_assert!(!key.bytes().any(|byte| byte.is_ascii_uppercase()));
            prop_assert!(authority_key(&again).is_some());
        }
    }

    #[test]
    fn odd_retry_after_values_never_panic_and_stay_under_the_cap(value in header_bytes()) {
        let Ok(value) = http::HeaderValue::from_bytes(&value) else {
            return Ok(());
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let clock = ManualClock::new();
        let registry = BackoffRegistry::builder()
            .threshold(100)
            .clock(clock.clone())
            .build()
            .unwrap();
        let hinted = tower::service_fn(move |_: Request<()>| {
            let value = value.clone();
            async move {
                let mut response = Response::new(());
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                response.headers_mut().insert(RETRY_AFTER, value);
                Ok::<_, BoxError>(response)
            }
        });
        let cap = Duration::from_secs(600);
        let mut service = ServiceBuilder::new()
            .layer(BackoffLayer::new(registry.clone()).max_retry_after(cap))
            .service(hinted);

        let request = Request::get("http://hinted.example/").body(()).unwrap();
        let response = runtime.block_on(async {
            service.ready().await.unwrap().call(request).await
        });
        prop_assert_eq!(response.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);

        // The failure is always counted; a hint, if any was valid, ends within the cap.
        prop_assert_eq!(registry.stats("hinted.example").failures_in_window, 1);
        if let Some(until) = registry.next_retry_at("hinted.example") {
            prop_assert!(until > clock.now() && until <= clock.now() + cap);
        }
    }
}

#[test]
fn examples_of_odd_uris() {
    let key = |uri: &str| authority_key(&uri.parse().unwrap()).map(|key| key.into_owned());
    assert_eq!(
        key("http://u:p@[::FFFF:1.2.3.4]:80/").as_deref(),
        Some("[::ffff:1.2.3.4]")
    );
    assert_eq!(key("http://h:99999/"), None);
    assert_eq!(key("http://@h/").as_deref(), Some("h"));
    assert_eq!(key("*"), None);
    assert_eq!(key("/only/a/path"), None);
    // Found by the property test: stripping the root dot must not leave another one.
    assert_eq!(key("http://5../"), None);
    assert_eq!(key("http://../"), None);
}

#[test]
fn configuration_at_the_extremes_works_or_is_a_config_error() {
    let extreme = BackoffRegistry::builder()
        .window(Duration::MAX)
        .backoff(Duration::MAX)
        .threshold(u32::MAX)
        .build();
    assert_eq!(
        extreme.unwrap_err(),
        ConfigError::ThresholdTooLarge {
            threshold: u32::MAX,
            max: url_backoff_registry::MAX_THRESHOLD
        }
    );

    let registry = BackoffRegistry::builder()
        .window(Duration::MAX)
        .backoff(Duration::MAX)
        .threshold(url_backoff_registry::MAX_THRESHOLD)
        .max_keys(usize::MAX)
        .build()
        .unwrap();
    assert!(registry
        .set_rule("k", Rule::default().threshold(u32::MAX))
        .is_err());
    registry
        .set_rule("k", Rule::default().threshold(1).window(Duration::MAX))
        .unwrap();
    registry.record_failure("k");
    assert!(registry.should_backoff("k"));
    assert!(registry.next_retry_at("k").is_some());
}
