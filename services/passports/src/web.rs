//! The public web port: each published passport's page (`/p/<id>`), its JSON-LD, its QR code
//! as SVG and PNG, a printable sheet of its labels, and the GS1 Digital Link resolver
//! (`/01/<GTIN>/10/<batch>`), served without a token. Only what is public is served: a draft, an
//! unknown id or a malformed address is the same plain 404 page, and no answer ever carries an
//! error's details.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use symbiose_eventstore::EventStore;
use symbiose_web::labels::{self, LABELS_MAX, Label};
use symbiose_web::lang::{self, Lang};
use symbiose_web::qr;
use uuid::Uuid;

use crate::gs1;
use crate::page::{self, Public};
use crate::registry::Registry;

/// Requests the web port answers at once; more are answered 503 at once, so a crowd or a
/// slow client cannot queue work without bound.
pub const WEB_REQUESTS_IN_FLIGHT_MAX: usize = 256;
/// Longest a request's answer may take to make.
const WEB_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Labels on a sheet when the address does not say (`?count=`): one A4 page.
pub const LABELS_DEFAULT: usize = labels::LABELS_PER_PAGE;
/// QR codes kept encoded, by their text: a page or its QR code asked again does not encode its
/// code again (the encoding is most of a page's making). A passport's URL makes a code of 33 to
/// 41 modules a side, about 2 KB kept (8 MB for all); the longest text allowed, 89 modules and
/// about 8 KB (32 MB at the very most).
const QR_CODES_KEPT_MAX: u64 = 4_096;
/// Pixels per module of the PNG QR code when the address does not say (`?px=`).
const PNG_MODULE_PX_DEFAULT: u32 = 8;
/// What every answer may do in a browser: nothing fetched from anywhere, no script run; the
/// inline style and the inline SVG only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the web port's handlers share.
pub struct Web<S> {
    registry: Arc<Registry<S>>,
    base_url: String,
    codes: moka::sync::Cache<String, Arc<qr::Modules>>,
}

impl<S> std::fmt::Debug for Web<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Web").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// The routes of the public web port over `registry`; passports' URLs start with `base_url`.
pub fn router<S: EventStore>(registry: Arc<Registry<S>>, base_url: &str) -> axum::Router {
    let web = Arc::new(Web {
        registry,
        base_url: base_url.trim_end_matches('/').to_owned(),
        codes: moka::sync::Cache::new(QR_CODES_KEPT_MAX),
    });
    axum::Router::new()
        .route("/p/{id}", get(passport_page::<S>))
        .route("/p/{id}/{file}", get(passport_file::<S>))
        .route("/01/{gtin}", get(digital_link::<S>))
        .route("/01/{gtin}/10/{batch}", get(digital_link_batch::<S>))
        .fallback(fallback)
        .with_state(web)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(tokio::sync::Semaphore::new(WEB_REQUESTS_IN_FLIGHT_MAX)),
            bounded,
        ))
}

/// Answers `request` if fewer than [`WEB_REQUESTS_IN_FLIGHT_MAX`] are being answered, within
/// [`WEB_ANSWER_TIMEOUT`]; 503 otherwise.
async fn bounded(
    State(in_flight): State<Arc<tokio::sync::Semaphore>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(_permit) = in_flight.try_acquire() else {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", "busy: try again", None);
    };
    match tokio::time::timeout(WEB_ANSWER_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            answer(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", "busy: try again", None)
        }
    }
}

/// The value of `key` in `uri`'s query, if given once as plain text.
fn query<'a>(uri: &'a Uri, key: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == key)
        .map(|(_, value)| value)
}

fn language(headers: &HeaderMap, uri: &Uri) -> Lang {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok());
    lang::negotiate(accept, query(uri, "lang"))
}

/// `body` with its type and the headers every answer carries.
fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl IntoResponse,
    lang: Option<Lang>,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // A passport changes rarely and its page is the same for every visitor of a language: a
    // minute of caching spares a crowd in front of one pallet stack.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    // A page is HTML or JSON-LD as `Accept` asks, in the language `Accept-Language` asks.
    headers.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Language"));
    if let Some(lang) = lang {
        headers.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
    }
    response
}

fn not_found(lang: Lang) -> Response {
    answer(StatusCode::NOT_FOUND, "text/html; charset=utf-8", page::not_found(lang), Some(lang))
}

async fn fallback(headers: HeaderMap, uri: Uri) -> Response {
    not_found(language(&headers, &uri))
}

impl<S: EventStore> Web<S> {
    /// The public part of passport `id`, if it is one anyone may see.
    fn public(&self, id: &str) -> Option<Public> {
        let id = Uuid::parse_str(id).ok()?;
        let view = self.registry.view();
        let held = view.passports.get(&id)?;
        Public::of(&view, held, &self.base_url)
    }

    /// The QR code of `text`, encoded once and kept (a passport's QR text never changes).
    fn code(&self, text: &str) -> Result<Arc<qr::Modules>, qr::QrError> {
        // Requests for a code not kept yet wait for one encoding of it.
        self.codes
            .try_get_with_by_ref(text, || qr::modules(text).map(Arc::new))
            .map_err(|error| error.as_ref().clone())
    }
}

async fn passport_page<S: EventStore>(
    State(web): State<Arc<Web<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let lang = language(&headers, &uri);
    let Some(public) = web.public(&id) else { return not_found(lang) };
    let wants_json_ld = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/ld+json"));
    if wants_json_ld {
        return json_ld_answer(&public);
    }
    match web.code(public.qr_url()) {
        Ok(code) => {
            let page = page::render(&public, lang, &code.svg());
            answer(StatusCode::OK, "text/html; charset=utf-8", page, Some(lang))
        }
        Err(error) => failed(lang, &error),
    }
}

fn json_ld_answer(public: &Public) -> Response {
    answer(StatusCode::OK, "application/ld+json", page::json_ld(public).to_string(), None)
}

/// An answer that could not be made: logged here, a plain page there.
fn failed(lang: Lang, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "a public page could not be made");
    let mut response = not_found(lang);
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// A file of passport `id`: `passport.jsonld`, `qr.svg`, `qr.png` (`?px=` pixels a module) or
/// `labels.pdf` (`?count=` labels, one page of them by default).
async fn passport_file<S: EventStore>(
    State(web): State<Arc<Web<S>>>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let lang = language(&headers, &uri);
    let Some(public) = web.public(&id) else { return not_found(lang) };
    let made = match file.as_str() {
        "passport.jsonld" => return json_ld_answer(&public),
        "qr.svg" => {
            web.code(public.qr_url()).map(|code| answer(StatusCode::OK, "image/svg+xml", code.svg(), None))
        }
        "qr.png" => {
            let px = query(&uri, "px").and_then(|px| px.parse::<u32>().ok()).unwrap_or(PNG_MODULE_PX_DEFAULT);
            web.code(public.qr_url())
                .and_then(|code| code.png(px.clamp(1, qr::MODULE_PX_MAX)))
                .map(|png| answer(StatusCode::OK, "image/png", png, None))
        }
        "labels.pdf" => {
            let count =
                query(&uri, "count").and_then(|count| count.parse::<usize>().ok()).unwrap_or(LABELS_DEFAULT);
            return label_sheet(&public, count.clamp(1, LABELS_MAX), lang);
        }
        _ => return not_found(lang),
    };
    made.unwrap_or_else(|error| failed(lang, &error))
}

/// `count` labels of `public` on A4 sheets.
fn label_sheet(public: &Public, count: usize, lang: Lang) -> Response {
    let declaration = &public.record.declaration;
    let mut lines = Vec::new();
    if let Some(batch) = &declaration.batch {
        lines.push(format!("Lot / Charge / Batch: {batch}"));
    }
    if let Some(gtin) = &declaration.gtin {
        lines.push(format!("GTIN {gtin}"));
    }
    lines.push(format!(
        "{} · {}",
        page::percent(declaration.recycled_content_bp, lang),
        match lang {
            Lang::Fr => "recyclé",
            Lang::De => "Rezyklat",
            Lang::En => "recycled",
        }
    ));
    if let Some(owner) = &public.owner_name {
        lines.push(owner.clone());
    }
    let label = Label { url: public.qr_url().to_owned(), title: declaration.name.clone(), lines };
    match labels::sheet(&vec![label; count], &declaration.name) {
        Ok(pdf) => {
            let mut response = answer(StatusCode::OK, "application/pdf", pdf, None);
            response.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("inline; filename=\"labels-{}.pdf\"", public.passport_id))
                    .unwrap_or(HeaderValue::from_static("inline")),
            );
            response
        }
        Err(error) => failed(lang, &error),
    }
}

/// The passport a Digital Link names, by a redirect to its page (GS1's resolvers answer so).
fn resolve<S: EventStore>(web: &Web<S>, gtin: &str, batch: Option<&str>, lang: Lang) -> Response {
    let Ok(gtin) = gs1::gtin(gtin) else { return not_found(lang) };
    let batch = match batch.map(gs1::batch) {
        Some(Ok(batch)) => Some(batch),
        Some(Err(_)) => return not_found(lang),
        None => None,
    };
    let view = web.registry.view();
    match view.by_digital_link(&gtin, batch.as_deref()) {
        // The page's public URL, under the base URL's path too (a proxy may mount it there).
        Some(held) => Redirect::temporary(&crate::grpc::urls(&web.base_url, held).0).into_response(),
        None => not_found(lang),
    }
}

async fn digital_link<S: EventStore>(
    State(web): State<Arc<Web<S>>>,
    Path(gtin): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    resolve(&web, &gtin, None, language(&headers, &uri))
}

async fn digital_link_batch<S: EventStore>(
    State(web): State<Arc<Web<S>>>,
    Path((gtin, batch)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    resolve(&web, &gtin, Some(&batch), language(&headers, &uri))
}
