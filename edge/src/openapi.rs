//! The OpenAPI document's shared parts: its base (info, tags, the bearer scheme) and the
//! read-your-writes parameters every read and write carries. Each routes module lists its
//! own operations in a `Doc`, next to its `routes()`; `crate::api` merges them and serves
//! `GET /openapi.json`. schemathesis (tests/hostile) checks every answer of the running
//! API against this document.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The security scheme every bearer route names (`security(("bearer" = []))`).
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Jukebox API",
        description = "Accounts, import, library, playback and administration of Jukebox. \
            Errors are `{\"error\": {\"code\", \"message\"}}`; 5xx answers are opaque.",
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&BearerToken),
    tags(
        (name = "accounts", description = "sign-up, sign-in, sessions"),
        (name = "imports", description = "search, import, upload, jobs"),
        (name = "library", description = "my tracks and playback"),
        (name = "apps", description = "credentials for music apps (the Subsonic API)"),
        (name = "admin", description = "admins only: users, songs, jobs, audit"),
        (name = "operations", description = "health and metrics"),
    )
)]
struct Base;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("the access token from POST /auth/signin"))
                    .build(),
            ),
        );
    }
}

/// Reading your own writes (`crate::fresh`): every command's successful answer carries
/// `Jukebox-Position` (and a `position` body field when the body is a JSON object); every
/// read route (a GET behind a bearer token) takes it back as `?after=` or the header.
struct ReadYourWrites;

const POSITION_PATTERN: &str = r"^[0-9]{1,20}\.[0-9]{1,19}$";

impl Modify for ReadYourWrites {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};
        let token = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(POSITION_PATTERN))
                .examples([serde_json::json!("1042.77")])
                .build()
        };
        let read = "The `position` of your last write (a command's answer): the answer waits \
            until every read model this route reads shows it (bounded; then 503 with \
            Retry-After).";
        let mut bodies = std::collections::BTreeSet::new();
        for item in openapi.paths.paths.values_mut() {
            if let Some(get) = item.get.as_mut().filter(|op| op.security.is_some()) {
                let parameters = get.parameters.get_or_insert_with(Vec::new);
                parameters.push(
                    ParameterBuilder::new()
                        .name("after")
                        .parameter_in(ParameterIn::Query)
                        .required(Required::False)
                        .description(Some(read))
                        .schema(Some(token()))
                        .build(),
                );
                for (status, description) in [
                    ("400", "a malformed position"),
                    ("503", "the read models did not reach the position in time"),
                ] {
                    get.responses
                        .responses
                        .entry(status.into())
                        .or_insert_with(|| {
                            RefOr::T(
                                utoipa::openapi::ResponseBuilder::new()
                                    .description(description)
                                    .content(
                                        "application/json",
                                        utoipa::openapi::ContentBuilder::new()
                                            .schema(Some(utoipa::openapi::Ref::from_schema_name(
                                                "ErrorBody",
                                            )))
                                            .build(),
                                    )
                                    .build(),
                            )
                        });
                }
                parameters.push(
                    ParameterBuilder::new()
                        .name("Jukebox-Position")
                        .parameter_in(ParameterIn::Header)
                        .required(Required::False)
                        .description(Some("Like `after`."))
                        .schema(Some(token()))
                        .build(),
                );
            }
            let writes = [item.post.as_mut(), item.delete.as_mut(), item.put.as_mut()];
            for operation in writes.into_iter().flatten() {
                for (status, response) in operation.responses.responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if !status.starts_with('2') {
                        continue;
                    }
                    for content in response.content.values() {
                        if let Some(RefOr::Ref(body)) = &content.schema {
                            bodies.insert(body.ref_location.clone());
                        }
                    }
                    response.headers.insert(
                        "Jukebox-Position".into(),
                        HeaderBuilder::new()
                            .schema(token())
                            .description(Some(
                                "Where the command's last event lies in the log; pass it to \
                                 reads as `?after=` (absent when the command wrote nothing \
                                 or was not answered in time).",
                            ))
                            .build(),
                    );
                }
            }
        }
        // The same token in the answer's body (added by `crate::fresh::stamp`).
        let components = openapi.components.get_or_insert_with(Default::default);
        for location in bodies {
            let name = location.trim_start_matches("#/components/schemas/");
            if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(object))) =
                components.schemas.get_mut(name)
            {
                object.properties.insert(
                    "position".into(),
                    RefOr::T(utoipa::openapi::schema::Schema::Object(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some(POSITION_PATTERN))
                            .description(Some(
                                "Like the `Jukebox-Position` header: pass it to reads as `?after=`.",
                            ))
                            .build(),
                    )),
                );
            }
        }
    }
}

/// The document of these parts: the base (info, tags, bearer scheme) with every part
/// merged in and the read-your-writes parameters added.
pub fn assemble(
    parts: impl IntoIterator<Item = utoipa::openapi::OpenApi>,
) -> utoipa::openapi::OpenApi {
    let mut document = Base::openapi();
    for part in parts {
        document.merge(part);
    }
    ReadYourWrites.modify(&mut document);
    document
}
