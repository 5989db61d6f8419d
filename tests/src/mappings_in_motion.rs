//! [`MappingsInMotion`]: a Lambda client whose event source mappings take a while to switch, as
//! in AWS. There a mapping just enabled or disabled is `Enabling` or `Disabling` for a few
//! seconds, and Lambda refuses to update it meanwhile (HTTP 400, `ResourceInUseException`).
//! moto switches a mapping at once and never refuses. An update of a mapping made within
//! `motion` of the last one of it that went through is sent to a mapping that does not exist
//! (so moto changes nothing) and answered as AWS answers it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_lambda::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_lambda::error::BoxError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// What Lambda answers an update of a mapping that is still switching.
const IN_USE: &str =
    r#"{"Type":"User","Message":"Cannot update the event source mapping because it is in use."}"#;

/// Marks an update refused (the request is gone by the time its answer comes).
#[derive(Debug, Clone)]
struct Refused;

impl Storable for Refused {
    type Storer = StoreReplace<Self>;
}

/// Refuses an update of a mapping within `motion` of its last update that went through.
#[derive(Debug, Clone)]
pub struct MappingsInMotion {
    motion: Duration,
    /// When each mapping (by its update's path) last switched.
    switched: Arc<Mutex<HashMap<String, Instant>>>,
}

impl MappingsInMotion {
    /// A client like `client` whose mappings are in motion for `motion` after each switch.
    pub fn client(client: &aws_sdk_lambda::Client, motion: Duration) -> aws_sdk_lambda::Client {
        let interceptor = Self {
            motion,
            switched: Arc::default(),
        };
        let config = client
            .config()
            .to_builder()
            .interceptor(interceptor)
            .build();
        aws_sdk_lambda::Client::from_conf(config)
    }
}

impl Intercept for MappingsInMotion {
    fn name(&self) -> &'static str {
        "MappingsInMotion"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let update = request.method() == "PUT" && request.uri().contains("/event-source-mappings/");
        if !update {
            return Ok(());
        }
        let mapping = request.uri().to_owned();
        let mut switched = self.switched.lock().expect("unpoisoned");
        let now = Instant::now();
        if switched
            .get(&mapping)
            .is_some_and(|at| now.duration_since(*at) < self.motion)
        {
            let (path, _uuid) = mapping
                .rsplit_once('/')
                .ok_or("an update's path ends with its mapping")?;
            let elsewhere = format!("{path}/00000000-0000-0000-0000-000000000000");
            request.set_uri(elsewhere.as_str())?;
            cfg.interceptor_state().store_put(Refused);
        } else {
            switched.insert(mapping, now);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Refused>().is_some() {
            let response = context.response_mut();
            *response.status_mut() = StatusCode::try_from(400)?;
            response
                .headers_mut()
                .insert("x-amzn-errortype", "ResourceInUseException");
            *response.body_mut() = SdkBody::from(IN_USE);
        }
        Ok(())
    }
}
