//! Hostile input never panics: arbitrary URIs through the key function and the layer,
//! and configuration at its extremes.

use std::time::Duration;

use http::{Request, Response, StatusCode, Uri};
use proptest::prelude::*;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use url_backoff_registry::{authority_key, BackoffLayer, BackoffRegistry, ConfigError, Rule};

/// Authority-like text: host characters, digits, and the separators that matter.
fn authority_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"([a-zA-Z0-9.\-_~%!$&'()*+,;=]{0,8}@)?(\[[0-9a-fA-F:.%vV]{0,40}\]|[a-zA-Z0-9.\-%]{0,20})(:[0-9]{0,8})?")
        .expect("valid regex")
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

        let expected: Vec<String> = authority_key(&uri).map(|key| key.into_owned()).into_iter().collect();
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
