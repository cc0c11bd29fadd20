//! Routes registered together with their description, so the router and
//! the OpenAPI document (`http::openapi`) come from one list and cannot
//! drift apart: a route without a description cannot be written, and the
//! document lists exactly the routes there are.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};
use serde_json::{Value, json};

use crate::app::AppState;

/// The dialect of a surface: its error bodies and path style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Django REST Framework (accounts, company admin, coach): paths end
    /// in `/`, errors `{"detail"}` or `{"field": [...]}`.
    Drf,
    /// Laravel (organisation API): errors `{"message", "errors"}`.
    Laravel,
    /// Rails (worker profiles): errors `{"error"}` or `{"errors"}`.
    Rails,
    /// Probes and downloads: no API conventions.
    Plain,
}

/// How an operation authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    /// A JWT access token (`JWT` or `Bearer`).
    Jwt,
    /// An organisation API key or an admin's JWT (`Bearer`).
    ApiKeyOrJwt,
}

/// A request body: its schema and the media types it may come in.
#[derive(Debug, Clone)]
pub struct RequestBody {
    pub schema: Value,
    pub json: bool,
    pub form: bool,
    pub multipart: bool,
    pub required: bool,
}

/// What the document says about one operation.
#[derive(Debug, Clone)]
pub struct Doc {
    pub summary: &'static str,
    pub description: Option<&'static str>,
    pub auth: Auth,
    pub request: Option<RequestBody>,
    /// Query parameters: name, schema, description.
    pub query: Vec<(&'static str, Value, &'static str)>,
    /// The success status and its body schema (`None`: no body).
    pub success: (u16, Option<Value>),
    /// The success body's media type.
    pub success_media: Vec<&'static str>,
    /// Documented error statuses (their bodies follow the dialect).
    pub errors: Vec<u16>,
    /// Path parameters that are strings (the rest are integers).
    pub string_params: Vec<&'static str>,
    /// Path parameters that take one of a fixed set of words.
    pub choice_params: Vec<(&'static str, Vec<&'static str>)>,
}

/// Starts the description of an operation.
pub fn doc(summary: &'static str) -> Doc {
    Doc {
        summary,
        description: None,
        auth: Auth::Jwt,
        request: None,
        query: Vec::new(),
        success: (200, None),
        success_media: vec!["application/json"],
        errors: Vec::new(),
        string_params: Vec::new(),
        choice_params: Vec::new(),
    }
}

impl Doc {
    pub fn describe(mut self, text: &'static str) -> Self {
        self.description = Some(text);
        self
    }

    pub fn public(mut self) -> Self {
        self.auth = Auth::None;
        self
    }

    pub fn api_key(mut self) -> Self {
        self.auth = Auth::ApiKeyOrJwt;
        self
    }

    /// A JSON body. (Every surface also reads the same fields from a
    /// form; the document describes the JSON form, which can say null.)
    pub fn body(mut self, schema: Value) -> Self {
        self.request = Some(RequestBody {
            schema,
            json: true,
            form: false,
            multipart: false,
            required: true,
        });
        self
    }

    /// A JSON body only (nested objects have no form encoding here).
    pub fn json_body(mut self, schema: Value) -> Self {
        self.request = Some(RequestBody {
            schema,
            json: true,
            form: false,
            multipart: false,
            required: true,
        });
        self
    }

    /// The body may be left out (PATCH: nothing changes).
    pub fn optional_body(mut self) -> Self {
        if let Some(body) = &mut self.request {
            body.required = false;
        }
        self
    }

    /// A JSON body that may also come as multipart (with files).
    pub fn body_with_files(mut self, schema: Value) -> Self {
        self.request = Some(RequestBody {
            schema,
            json: true,
            form: false,
            multipart: true,
            required: false,
        });
        self
    }

    /// A multipart body only.
    pub fn upload(mut self, schema: Value) -> Self {
        self.request = Some(RequestBody {
            schema,
            json: false,
            form: false,
            multipart: true,
            required: true,
        });
        self
    }

    pub fn query(mut self, name: &'static str, schema: Value, about: &'static str) -> Self {
        self.query.push((name, schema, about));
        self
    }

    /// A query object written `name[key]=value` (OpenAPI's deepObject style).
    pub fn deep_object_query(
        mut self,
        name: &'static str,
        schema: Value,
        about: &'static str,
    ) -> Self {
        let mut schema = schema;
        schema["x-style"] = json!("deepObject");
        self.query.push((name, schema, about));
        self
    }

    pub fn ok(mut self, status: u16, schema: Value) -> Self {
        self.success = (status, Some(schema));
        self
    }

    /// A file's bytes, of whatever type it has.
    pub fn file(mut self) -> Self {
        self.success = (200, Some(json!({"type": "string", "format": "binary"})));
        self.success_media = vec!["application/octet-stream"];
        self
    }

    /// A success body of another media type than JSON.
    pub fn media(mut self, media: &'static str) -> Self {
        self.success_media = vec![media];
        self
    }

    /// A success body of any of these media types.
    pub fn media_types(mut self, media: &[&'static str]) -> Self {
        self.success_media = media.to_vec();
        self
    }

    /// A 302 to another location.
    pub fn redirect(mut self) -> Self {
        self.success = (302, None);
        self
    }

    pub fn no_content(mut self) -> Self {
        self.success = (204, None);
        self
    }

    pub fn errors(mut self, statuses: &[u16]) -> Self {
        self.errors.extend_from_slice(statuses);
        self
    }

    pub fn string_param(mut self, name: &'static str) -> Self {
        self.string_params.push(name);
        self
    }

    /// A path parameter that is one of `words` (anything else is 404).
    pub fn choice_param(mut self, name: &'static str, words: Vec<&'static str>) -> Self {
        self.choice_params.push((name, words));
        self
    }
}

/// One registered operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: Method,
    /// As routed: without a trailing slash (every path also works with one).
    pub path: &'static str,
    pub tag: &'static str,
    pub dialect: Dialect,
    pub doc: Doc,
}

/// A surface's routes and their descriptions.
pub struct Api {
    pub router: Router<AppState>,
    pub operations: Vec<Operation>,
    tag: &'static str,
    dialect: Dialect,
}

macro_rules! method {
    ($name:ident, $method:expr, $filter:expr) => {
        pub fn $name<H, T>(self, path: &'static str, handler: H, doc: Doc) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.add($method, $filter, path, handler, doc)
        }
    };
}

impl Api {
    pub fn new(tag: &'static str, dialect: Dialect) -> Api {
        Api {
            router: Router::new(),
            operations: Vec::new(),
            tag,
            dialect,
        }
    }

    fn add<H, T>(
        mut self,
        method: Method,
        filter: MethodFilter,
        path: &'static str,
        handler: H,
        doc: Doc,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter, handler));
        self.operations.push(Operation {
            method,
            path,
            tag: self.tag,
            dialect: self.dialect,
            doc,
        });
        self
    }

    method!(get, Method::GET, MethodFilter::GET);
    method!(post, Method::POST, MethodFilter::POST);
    method!(put, Method::PUT, MethodFilter::PUT);
    method!(patch, Method::PATCH, MethodFilter::PATCH);
    method!(delete, Method::DELETE, MethodFilter::DELETE);

    /// Applies `f` to the router (layers), keeping the operations.
    pub fn map_router(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Api {
        self.router = f(self.router);
        self
    }
}

// ------------------------------------------------------------- schema helpers

/// A reference to a component schema.
pub fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// An array of `items`.
pub fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// An object with these properties, the `required` ones listed.
pub fn object(properties: Value, required: &[&str]) -> Value {
    let mut o = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

/// A DRF page of `item`.
pub fn drf_page(item: Value) -> Value {
    object(
        json!({
            "count": {"type": "integer"},
            "next": {"type": ["string", "null"]},
            "previous": {"type": ["string", "null"]},
            "results": array(item),
        }),
        &["count", "next", "previous", "results"],
    )
}

/// A Laravel page of `item` (`data`, `links`, `meta`).
pub fn laravel_page(item: Value) -> Value {
    object(
        json!({"data": array(item), "links": r("LaravelLinks"), "meta": r("LaravelMeta")}),
        &["data", "links", "meta"],
    )
}

/// One of `values`, with surrounding whitespace, or empty (read as
/// absent): a query filter the server trims (and, if `any_case`,
/// lower-cases).
pub fn choice(values: &[&str], any_case: bool) -> Value {
    let alternatives: Vec<String> = values
        .iter()
        .map(|v| {
            v.chars()
                .map(|c| {
                    if any_case && c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                    } else {
                        regex_escape(c)
                    }
                })
                .collect()
        })
        .collect();
    json!({"type": "string", "pattern": format!("^\\s*(|{})\\s*$", alternatives.join("|"))})
}

fn regex_escape(c: char) -> String {
    if "\\^$.|?*+()[]{}".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

pub fn string() -> Value {
    json!({"type": "string"})
}

/// A required text field as DRF and Rails read it: a string with something
/// other than whitespace in it (numbers are taken as their text).
pub fn text() -> Value {
    json!({"type": ["string", "number"], "minLength": 1, "pattern": "^[^\\u0000]*\\S[^\\u0000]*$"})
}

/// An optional text field: blank, null or a number are fine.
pub fn optional_text() -> Value {
    json!({"type": ["string", "number", "null"], "pattern": "^[^\\u0000]*$"})
}

/// A required Laravel `string` field: numbers are refused.
pub fn laravel_text() -> Value {
    json!({"type": "string", "minLength": 1, "pattern": "^[^\\u0000]*\\S[^\\u0000]*$"})
}

/// An email address as Roster checks it: one `@` with text on both
/// sides and a dot in the domain.
pub fn email() -> Value {
    json!({"type": "string", "format": "email", "maxLength": 254})
}

/// A page number or size: integers; anything else falls back to the
/// default, as DRF and Laravel do.
pub fn page_number() -> Value {
    json!({"type": ["integer", "string"]})
}

pub fn nullable_string() -> Value {
    json!({"type": ["string", "null"]})
}

pub fn integer() -> Value {
    json!({"type": "integer"})
}

pub fn date() -> Value {
    json!({"type": ["string", "null"], "format": "date"})
}

/// A date where a blank string means none (Rails' reading of form input).
pub fn blank_or_date() -> Value {
    json!({"anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "pattern": "^\\s*$"},
        {"type": "null"},
    ]})
}
