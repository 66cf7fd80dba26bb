//! The public territory dashboard, served on the web port beside the passports' pages:
//!
//! - `GET /territories`: every territory by kind, each a link, and the periods to choose from;
//! - `GET /territories/<code>?period=2026`: the page of one territory over one period (the
//!   current year in Paris when not given): the headline figures, a table per family, the
//!   origin-destination tables by country and by region, and charts drawn on the server as
//!   inline SVG (tonnes per family, shares of distance, the map of the flows across borders);
//! - `GET /territories/<code>/<table>.csv?period=...`: each table of the page as CSV, `table`
//!   one of `headline`, `families`, `flows-countries`, `flows-regions`.
//!
//! Every figure is the public one (`Audience::Public`): a figure summing fewer than
//! [`MIN_GROUP`] producers or receivers says it is withheld, in the page's language, and is
//! empty in CSV with its `withheld` column `true`; it is never shown as zero. Pages are in
//! French, German or English (`?lang=`, else `Accept-Language`), one HTML document each with its
//! style and charts inline, no script, under the same content security policy as the passports'.
//!
//! **CSV.** Fields are separated by `;` and numbers have a decimal comma, the file starts with a
//! UTF-8 byte order mark and lines end with CRLF: what a spreadsheet set to French or German
//! (the region's) opens as columns of numbers with a double click. Headers and keys (`family`,
//! `indicator`, codes) are fixed English words for scripts; names are in the page's language.
//! Masses are whole kilograms.
//!
//! An unknown territory is a plain 404 page and a bad period a plain 400 page, each naming the
//! parameter. The router has no fallback of its own: it is merged with the passports'.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use symbiose_domain::{Country, MaterialFamily};
use symbiose_eventstore::EventStore;
use symbiose_web::html::escape;
use symbiose_web::lang::{self, Lang};

use crate::Observatory;
use crate::areas::{self, Kind, Territory};
use crate::charts::{self, Bar, MapFlow, MapWords};
use crate::facts::Facts;
use crate::figures::{self, Audience, DISTANCE_BANDS_KM, Figures, Flow, Level, MIN_GROUP};
use crate::period::Period;

/// Dashboard requests answered at once; more are answered 503 at once. A page computes the
/// figures over every delivery of its period and draws three charts, so fewer than the
/// passports' pages.
pub const DASHBOARD_REQUESTS_IN_FLIGHT_MAX: usize = 32;
/// Longest a page or file may take to make.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `period` parameter read, in characters (`2026-01-15..2026-02-14` is 22).
pub const PERIOD_TEXT_CHARS_MAX: usize = 32;
/// The time zone whose calendar says which year is "this year".
const CALENDAR_TIME_ZONE: &str = "Europe/Paris";
/// The separator of the CSV files' fields.
pub const CSV_SEPARATOR: char = ';';
/// What every answer may do in a browser: nothing fetched, no script; inline style and SVG.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A table of the page, as its CSV file is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Headline,
    Families,
    FlowsCountries,
    FlowsRegions,
}

impl Table {
    pub const ALL: [Table; 4] =
        [Table::Headline, Table::Families, Table::FlowsCountries, Table::FlowsRegions];

    pub fn key(self) -> &'static str {
        match self {
            Table::Headline => "headline",
            Table::Families => "families",
            Table::FlowsCountries => "flows-countries",
            Table::FlowsRegions => "flows-regions",
        }
    }

    fn from_file(file: &str) -> Option<Table> {
        let key = file.strip_suffix(".csv")?;
        Table::ALL.into_iter().find(|table| table.key() == key)
    }
}

/// What a page of one territory shows, computed under the view's read guard and rendered
/// after it is dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    pub territory: &'static Territory,
    pub period: Period,
    pub figures: Figures,
    pub by_country: Vec<Flow>,
    pub by_region: Vec<Flow>,
}

/// The public figures of `territory` over `period`.
pub fn dashboard(facts: &Facts, territory: &'static Territory, period: Period) -> Dashboard {
    let figures = figures::figures(facts, territory, &period, Audience::Public);
    let by_country = figures::flows(facts, Some(territory), &period, Level::Country, Audience::Public);
    let by_region = figures::flows(facts, Some(territory), &period, Level::Region, Audience::Public);
    Dashboard { territory, period, figures, by_country, by_region }
}

/// The routes of the dashboard over `observatory`, each request bounded in number and time.
pub fn router<S: EventStore>(observatory: Arc<Observatory<S>>) -> axum::Router {
    axum::Router::new()
        .route("/territories", get(index_page))
        .route("/territories/{code}", get(territory_page::<S>))
        .route("/territories/{code}/{file}", get(territory_file::<S>))
        .with_state(observatory)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(tokio::sync::Semaphore::new(DASHBOARD_REQUESTS_IN_FLIGHT_MAX)),
            bounded,
        ))
}

async fn bounded(
    State(in_flight): State<Arc<tokio::sync::Semaphore>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let busy =
        || answer(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", "busy: try again", None);
    let Ok(_permit) = in_flight.try_acquire() else { return busy() };
    match tokio::time::timeout(ANSWER_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => busy(),
    }
}

/// The value of `key` in `uri`'s query, if given, as plain text.
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

/// The current year in Paris.
fn this_year() -> i16 {
    let zone = jiff::tz::TimeZone::get(CALENDAR_TIME_ZONE).unwrap_or(jiff::tz::TimeZone::UTC);
    zone.to_datetime(jiff::Timestamp::now()).year()
}

/// What a request names that the dashboard does not show.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// An unknown territory: 404.
    Territory(String),
    /// A period that is not one: 400, saying why.
    Period(String),
}

impl Refusal {
    /// The plain page naming the parameter, in `lang`.
    fn page(&self, lang: Lang) -> Response {
        match self {
            Refusal::Territory(code) => not_found(lang, "territory", code),
            Refusal::Period(reason) => bad_request(lang, reason),
        }
    }
}

/// The period `uri` asks for, this year's by default.
fn period_of(uri: &Uri) -> Result<Period, Refusal> {
    let text = match query(uri, "period") {
        None | Some("") => this_year().to_string(),
        Some(text) if text.chars().count() > PERIOD_TEXT_CHARS_MAX => {
            return Err(Refusal::Period(format!("at most {PERIOD_TEXT_CHARS_MAX} characters")));
        }
        Some(text) => text.to_owned(),
    };
    let period = Period::parse(&text).map_err(|error| Refusal::Period(error.to_string()))?;
    if !period.calendar {
        // Two ranges of days a day apart would give that day's deliveries away.
        return Err(Refusal::Period("a month (2026-11), a quarter (2026-Q3) or a year (2026)".to_owned()));
    }
    Ok(period)
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
    // Figures move with deliveries, not by the second: a minute of caching spares a crowd.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    if let Some(lang) = lang {
        headers.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
    }
    response
}

fn plain_page(status: StatusCode, lang: Lang, title: &str, text: &str) -> Response {
    let words = words(lang);
    let mut out = String::new();
    head(&mut out, lang, title);
    let _ = write!(
        out,
        "</head><body><h1>{}</h1><p>{}</p><p><a href=\"/territories?lang={}\">{}</a></p></body></html>",
        escape(title),
        escape(text),
        lang.code(),
        words.all_territories
    );
    answer(status, "text/html; charset=utf-8", out, Some(lang))
}

fn not_found(lang: Lang, parameter: &str, value: &str) -> Response {
    let words = words(lang);
    plain_page(
        StatusCode::NOT_FOUND,
        lang,
        words.not_found,
        &format!("{parameter}: {value:?} {}", words.unknown),
    )
}

fn bad_request(lang: Lang, reason: &str) -> Response {
    plain_page(StatusCode::BAD_REQUEST, lang, words(lang).bad_request, &format!("period: {reason}"))
}

async fn index_page(headers: HeaderMap, uri: Uri) -> Response {
    let lang = language(&headers, &uri);
    match period_of(&uri) {
        Ok(period) => {
            answer(StatusCode::OK, "text/html; charset=utf-8", index(&period, this_year(), lang), Some(lang))
        }
        Err(refusal) => refusal.page(lang),
    }
}

/// The territory of `code` and the period of `uri`.
fn asked(code: &str, uri: &Uri) -> Result<(&'static Territory, Period), Refusal> {
    let Some(territory) = areas::territory(code) else { return Err(Refusal::Territory(code.to_owned())) };
    Ok((territory, period_of(uri)?))
}

/// Computes the dashboard on a blocking thread (the figures are a walk over every delivery),
/// holding the view's read guard only for that, then makes the answer with `make`.
async fn computed<S: EventStore>(
    observatory: Arc<Observatory<S>>,
    territory: &'static Territory,
    period: Period,
    lang: Lang,
    make: impl FnOnce(&Dashboard) -> Response + Send + 'static,
) -> Response {
    let made = tokio::task::spawn_blocking(move || {
        let dashboard = {
            let facts = observatory.facts();
            dashboard(&facts, territory, period)
        };
        make(&dashboard)
    })
    .await;
    made.unwrap_or_else(|error| {
        tracing::error!(%error, "a dashboard page could not be made");
        plain_page(StatusCode::INTERNAL_SERVER_ERROR, lang, words(lang).failed, "")
    })
}

async fn territory_page<S: EventStore>(
    State(observatory): State<Arc<Observatory<S>>>,
    Path(code): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let lang = language(&headers, &uri);
    let (territory, period) = match asked(&code, &uri) {
        Ok(asked) => asked,
        Err(refusal) => return refusal.page(lang),
    };
    let this_year = this_year();
    computed(observatory, territory, period, lang, move |dashboard| match render(dashboard, this_year, lang) {
        Ok(page) => answer(StatusCode::OK, "text/html; charset=utf-8", page, Some(lang)),
        Err(error) => {
            tracing::error!(%error, territory = %dashboard.territory.code, "a dashboard page could not be made");
            plain_page(StatusCode::INTERNAL_SERVER_ERROR, lang, words(lang).failed, "")
        }
    })
    .await
}

async fn territory_file<S: EventStore>(
    State(observatory): State<Arc<Observatory<S>>>,
    Path((code, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let lang = language(&headers, &uri);
    let (territory, period) = match asked(&code, &uri) {
        Ok(asked) => asked,
        Err(refusal) => return refusal.page(lang),
    };
    let Some(table) = Table::from_file(&file) else { return not_found(lang, "table", &file) };
    computed(observatory, territory, period, lang, move |dashboard| {
        let mut response =
            answer(StatusCode::OK, "text/csv; charset=utf-8", csv(dashboard, table, lang), Some(lang));
        let name = csv_file_name(dashboard, table);
        response.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                .unwrap_or(HeaderValue::from_static("attachment")),
        );
        response
    })
    .await
}

/// `<code>-<period>-<table>.csv`, with any character but letters, digits, `.` and `-` as `_`.
pub fn csv_file_name(dashboard: &Dashboard, table: Table) -> String {
    format!("{}-{}-{}.csv", dashboard.territory.code, dashboard.period.label, table.key())
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '.' | '-') { character } else { '_' }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Words.

/// The words of the pages, in one language.
struct Words {
    title: &'static str,
    all_territories: &'static str,
    countries: &'static str,
    regions: &'static str,
    eurodistricts: &'static str,
    period: &'static str,
    this_year: &'static str,
    last_year: &'static str,
    headline: &'static str,
    accepted: &'static str,
    delivered: &'static str,
    deliveries: &'static str,
    share_within: &'static str,
    transport_distance: &'static str,
    transport_co2: &'static str,
    emission_factor: &'static str,
    pallets_reused: &'static str,
    water_reused: &'static str,
    active: &'static str,
    producers: &'static str,
    receivers: &'static str,
    carriers: &'static str,
    partnerships: &'static str,
    cross_border: &'static str,
    gate_fees_avoided: &'static str,
    reference: &'static str,
    by_family: &'static str,
    family: &'static str,
    total: &'static str,
    distances: &'static str,
    share: &'static str,
    flows_map: &'static str,
    public_flow: &'static str,
    withheld_flow: &'static str,
    no_flow: &'static str,
    by_country: &'static str,
    by_region: &'static str,
    origin: &'static str,
    destination: &'static str,
    no_delivery: &'static str,
    withheld_short: &'static str,
    /// "withheld (fewer than 3 organizations)", with `{}` for the number.
    withheld: &'static str,
    privacy: &'static str,
    indicator: &'static str,
    value: &'static str,
    not_found: &'static str,
    unknown: &'static str,
    bad_request: &'static str,
    failed: &'static str,
}

const FR: Words = Words {
    title: "Tableau de bord territorial",
    all_territories: "Tous les territoires",
    countries: "Pays",
    regions: "Départements, Kreise, cantons et provinces",
    eurodistricts: "Eurodistricts",
    period: "Période",
    this_year: "Cette année",
    last_year: "L'an dernier",
    headline: "Chiffres clés",
    accepted: "Tonnes acceptées",
    delivered: "Tonnes livrées",
    deliveries: "Livraisons",
    share_within: "Part à moins de {} km",
    transport_distance: "Distance de transport",
    transport_co2: "CO2 du transport",
    emission_factor: "Facteur d'émission",
    pallets_reused: "Palettes EUR réemployées",
    water_reused: "Eau de process réutilisée",
    active: "Organisations actives",
    producers: "producteurs",
    receivers: "receveurs",
    carriers: "transporteurs",
    partnerships: "Partenariats",
    cross_border: "dont transfrontaliers",
    gate_fees_avoided: "Coûts d'élimination évités",
    reference: "Référence",
    by_family: "Par famille de matières",
    family: "Famille",
    total: "Total",
    distances: "Distances parcourues",
    share: "Part des tonnes acceptées",
    flows_map: "Flux transfrontaliers",
    public_flow: "flux (épaisseur selon les tonnes)",
    withheld_flow: "flux non publié (moins de 3 organisations)",
    no_flow: "Aucun flux transfrontalier sur la période",
    by_country: "Origine et destination par pays",
    by_region: "Origine et destination par région",
    origin: "Origine",
    destination: "Destination",
    no_delivery: "Aucune livraison sur la période.",
    withheld_short: "non publié",
    withheld: "non publié (moins de {} organisations)",
    privacy: "Un chiffre qui additionne les volumes de moins de {} producteurs ou receveurs n'est pas publié, pour qu'on ne puisse pas y lire ceux d'une seule entreprise.",
    indicator: "Indicateur",
    value: "Valeur",
    not_found: "Introuvable",
    unknown: "n'existe pas",
    bad_request: "Requête invalide",
    failed: "La page n'a pas pu être construite",
};

const DE: Words = Words {
    title: "Dashboard der Region",
    all_territories: "Alle Gebiete",
    countries: "Länder",
    regions: "Départements, Kreise, Kantone und Provinzen",
    eurodistricts: "Eurodistrikte",
    period: "Zeitraum",
    this_year: "Dieses Jahr",
    last_year: "Letztes Jahr",
    headline: "Kennzahlen",
    accepted: "Angenommene Tonnen",
    delivered: "Gelieferte Tonnen",
    deliveries: "Lieferungen",
    share_within: "Anteil unter {} km",
    transport_distance: "Transportstrecke",
    transport_co2: "CO2 des Transports",
    emission_factor: "Emissionsfaktor",
    pallets_reused: "Wiederverwendete EUR-Paletten",
    water_reused: "Wiederverwendetes Prozesswasser",
    active: "Aktive Organisationen",
    producers: "Erzeuger",
    receivers: "Abnehmer",
    carriers: "Transporteure",
    partnerships: "Partnerschaften",
    cross_border: "davon grenzüberschreitend",
    gate_fees_avoided: "Vermiedene Entsorgungskosten",
    reference: "Referenz",
    by_family: "Nach Materialgruppe",
    family: "Materialgruppe",
    total: "Summe",
    distances: "Transportentfernungen",
    share: "Anteil der angenommenen Tonnen",
    flows_map: "Grenzüberschreitende Ströme",
    public_flow: "Strom (Breite nach Tonnen)",
    withheld_flow: "nicht veröffentlichter Strom (weniger als 3 Organisationen)",
    no_flow: "Keine grenzüberschreitenden Ströme im Zeitraum",
    by_country: "Herkunft und Ziel nach Land",
    by_region: "Herkunft und Ziel nach Region",
    origin: "Herkunft",
    destination: "Ziel",
    no_delivery: "Keine Lieferung im Zeitraum.",
    withheld_short: "nicht veröffentlicht",
    withheld: "nicht veröffentlicht (weniger als {} Organisationen)",
    privacy: "Eine Zahl, die die Mengen von weniger als {} Erzeugern oder Abnehmern summiert, wird nicht veröffentlicht, damit sich daraus keine Mengen eines einzelnen Unternehmens ablesen lassen.",
    indicator: "Kennzahl",
    value: "Wert",
    not_found: "Nicht gefunden",
    unknown: "existiert nicht",
    bad_request: "Ungültige Anfrage",
    failed: "Die Seite konnte nicht erstellt werden",
};

const EN: Words = Words {
    title: "Territory dashboard",
    all_territories: "All territories",
    countries: "Countries",
    regions: "Départements, districts, cantons and provinces",
    eurodistricts: "Eurodistricts",
    period: "Period",
    this_year: "This year",
    last_year: "Last year",
    headline: "Headline figures",
    accepted: "Tonnes accepted",
    delivered: "Tonnes delivered",
    deliveries: "Deliveries",
    share_within: "Share within {} km",
    transport_distance: "Transport distance",
    transport_co2: "Transport CO2",
    emission_factor: "Emission factor",
    pallets_reused: "EUR pallets reused",
    water_reused: "Process water reused",
    active: "Active organizations",
    producers: "producers",
    receivers: "receivers",
    carriers: "carriers",
    partnerships: "Partnerships",
    cross_border: "of which cross-border",
    gate_fees_avoided: "Disposal costs avoided",
    reference: "Reference",
    by_family: "By material family",
    family: "Family",
    total: "Total",
    distances: "Distances travelled",
    share: "Share of the tonnes accepted",
    flows_map: "Flows across borders",
    public_flow: "flow (width by tonnes)",
    withheld_flow: "withheld flow (fewer than 3 organizations)",
    no_flow: "No flow across a border in the period",
    by_country: "Origin and destination by country",
    by_region: "Origin and destination by region",
    origin: "Origin",
    destination: "Destination",
    no_delivery: "No delivery in the period.",
    withheld_short: "withheld",
    withheld: "withheld (fewer than {} organizations)",
    privacy: "A figure that sums the volumes of fewer than {} producers or receivers is withheld, so that no single company's volumes can be read from it.",
    indicator: "Indicator",
    value: "Value",
    not_found: "Not found",
    unknown: "does not exist",
    bad_request: "Bad request",
    failed: "The page could not be made",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Fr => &FR,
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

/// "withheld (fewer than 3 organizations)" in `lang`.
pub fn withheld_text(lang: Lang) -> String {
    words(lang).withheld.replace("{}", &MIN_GROUP.to_string())
}

fn country_name(country: Country, lang: Lang) -> &'static str {
    match (lang, country) {
        (Lang::Fr, Country::Fr) => "France",
        (Lang::Fr, Country::De) => "Allemagne",
        (Lang::Fr, Country::Ch) => "Suisse",
        (Lang::Fr, Country::Be) => "Belgique",
        (Lang::Fr, Country::Lu) => "Luxembourg",
        (Lang::De, Country::Fr) => "Frankreich",
        (Lang::De, Country::De) => "Deutschland",
        (Lang::De, Country::Ch) => "Schweiz",
        (Lang::De, Country::Be) => "Belgien",
        (Lang::De, Country::Lu) => "Luxemburg",
        (Lang::En, country) => country.name_en(),
    }
}

/// The name of the territory of `code` (a country in `lang`), or the code itself.
fn area_name(code: &str, lang: Lang) -> String {
    if let Ok(country) = code.parse::<Country>() {
        return country_name(country, lang).to_owned();
    }
    areas::territory(code).map_or_else(|| code.to_owned(), |territory| territory.name.clone())
}

fn territory_name(territory: &Territory, lang: Lang) -> String {
    match territory.kind {
        Kind::Country => area_name(&territory.code, lang),
        Kind::Region | Kind::Eurodistrict => territory.name.clone(),
    }
}

fn family_name(family: MaterialFamily, lang: Lang) -> &'static str {
    let labels = family.labels();
    match lang {
        Lang::Fr => labels.fr,
        Lang::De => labels.de,
        Lang::En => labels.en,
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers.

/// `value` with at most `decimals` decimals (trailing zeros dropped), its thousands grouped
/// and its decimal mark as `lang` writes them: `12 345,5` in French, `12.345,5` in German,
/// `12,345.5` in English.
pub fn number(value: f64, decimals: usize, lang: Lang) -> String {
    let fixed = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = fixed.split_once('.').unwrap_or((&fixed, ""));
    let fraction = fraction.trim_end_matches('0');
    let (group, mark) = match lang {
        Lang::Fr => ('\u{202f}', ','),
        Lang::De => ('.', ','),
        Lang::En => (',', '.'),
    };
    let mut out = String::new();
    if value < 0.0 && fixed.bytes().any(|byte| byte.is_ascii_digit() && byte != b'0') {
        out.push('-');
    }
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            out.push(group);
        }
        out.push(digit);
    }
    if !fraction.is_empty() {
        out.push(mark);
        out.push_str(fraction);
    }
    out
}

/// A number and its unit, with the space `lang` puts between them.
fn with_unit(number: String, unit: &str, lang: Lang) -> String {
    match (lang, unit) {
        (Lang::En, "%") => format!("{number}%"),
        _ => format!("{number}\u{a0}{unit}"),
    }
}

fn tonnes(kg: i64, lang: Lang) -> String {
    with_unit(number(kg as f64 / 1000.0, 3, lang), "t", lang)
}

fn percent(share_bp: u32, lang: Lang) -> String {
    with_unit(number(f64::from(share_bp) / 100.0, 1, lang), "%", lang)
}

/// A number for the CSV files: fixed `decimals`, a decimal comma, no grouping.
fn csv_number(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}").replace('.', ",")
}

// ---------------------------------------------------------------------------------------------
// The pages.

const STYLE: &str = "body{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1b1b1b}\
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .4rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #eee;vertical-align:top}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#555;font-size:.9rem}\
.withheld{color:#666;font-style:italic}.source{font-weight:normal;overflow-wrap:anywhere}td.n{white-space:nowrap}nav a{margin-right:.6rem}nav{margin:.3rem 0}a[aria-current]{font-weight:bold}\
figure{margin:.8rem 0}figure svg{max-width:100%;height:auto}ul.areas{columns:16rem}\
@media print{nav,.noprint{display:none}body{max-width:none}}";

fn head(out: &mut String, lang: Lang, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style>",
        lang.code(),
        escape(title)
    );
}

/// The address of `path` for `period` in `lang`.
fn link(path: &str, period: &str, lang: Lang) -> String {
    format!("{path}?period={}&amp;lang={}", escape(period), lang.code())
}

fn language_switch(out: &mut String, path: &str, period: &Period) {
    out.push_str("<nav class=\"noprint\">");
    for (lang, name) in [(Lang::Fr, "Français"), (Lang::De, "Deutsch"), (Lang::En, "English")] {
        let code = lang.code();
        let _ = write!(
            out,
            "<a href=\"{}\" hreflang=\"{code}\" lang=\"{code}\">{name}</a>",
            link(path, &period.label, lang)
        );
    }
    out.push_str("</nav>");
}

/// The periods to choose from: this year, last year, and this year's quarters.
fn period_picker(out: &mut String, path: &str, period: &Period, this_year: i16, lang: Lang) {
    let words = words(lang);
    let mut choices = vec![
        (this_year.to_string(), words.this_year.to_owned()),
        ((this_year - 1).to_string(), words.last_year.to_owned()),
    ];
    for quarter in 1..=4 {
        let label = format!("{this_year}-Q{quarter}");
        choices.push((label.clone(), label));
    }
    let _ = write!(out, "<nav class=\"noprint\" id=\"periods\">{}: ", words.period);
    for (value, label) in choices {
        let current = if value == period.label { " aria-current=\"page\"" } else { "" };
        let _ = write!(out, "<a href=\"{}\"{current}>{}</a>", link(path, &value, lang), escape(&label));
    }
    out.push_str("</nav>");
}

/// The index: every territory by kind, each a link to its page for `period`.
pub fn index(period: &Period, this_year: i16, lang: Lang) -> String {
    let words = words(lang);
    let mut out = String::with_capacity(16 * 1024);
    head(&mut out, lang, words.title);
    out.push_str("</head><body>");
    language_switch(&mut out, "/territories", period);
    let _ = write!(
        out,
        "<h1>{}</h1><p class=\"muted\">{}: {}</p>",
        words.title,
        words.period,
        escape(&period.label)
    );
    period_picker(&mut out, "/territories", period, this_year, lang);
    for (kind, heading) in [
        (Kind::Country, words.countries),
        (Kind::Region, words.regions),
        (Kind::Eurodistrict, words.eurodistricts),
    ] {
        let _ = write!(out, "<h2>{heading}</h2><ul class=\"areas\" id=\"{}\">", kind.key());
        for territory in areas::territories().iter().filter(|territory| territory.kind == kind) {
            let _ = write!(
                out,
                "<li><a href=\"{}\">{}</a> <span class=\"muted\">{}</span></li>",
                link(&format!("/territories/{}", escape(&territory.code)), &period.label, lang),
                escape(&territory_name(territory, lang)),
                escape(&territory.code)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>");
    out
}

/// A headline row: its CSV key, its label on the page, its value as the page and the CSV
/// write it (`None` when withheld), and the source it relies on.
struct HeadlineRow {
    key: String,
    label: String,
    shown: Option<String>,
    csv_value: Option<String>,
    csv_unit: &'static str,
    source: Option<String>,
}

fn headline_rows(figures: &Figures, lang: Lang) -> Vec<HeadlineRow> {
    let words = words(lang);
    let hidden = figures.total_withheld;
    let volume =
        |key: &str, label: &str, shown: String, csv_value: String, csv_unit, source: Option<String>| {
            HeadlineRow {
                key: key.to_owned(),
                label: label.to_owned(),
                shown: (!hidden).then_some(shown),
                csv_value: (!hidden).then_some(csv_value),
                csv_unit,
                source,
            }
        };
    let count = |key: &str, label: &str, value: u64| HeadlineRow {
        key: key.to_owned(),
        label: label.to_owned(),
        shown: Some(number(value as f64, 0, lang)),
        csv_value: Some(value.to_string()),
        csv_unit: "",
        source: None,
    };
    // A figure as public as its own rule says, within a public total.
    let volume_if = |withheld: bool,
                     key: &str,
                     label: &str,
                     shown: String,
                     csv_value: String,
                     csv_unit,
                     source: Option<String>| HeadlineRow {
        key: key.to_owned(),
        label: label.to_owned(),
        shown: (!hidden && !withheld).then_some(shown),
        csv_value: (!hidden && !withheld).then_some(csv_value),
        csv_unit,
        source,
    };
    let total = &figures.total;
    let mut rows = vec![
        volume(
            "accepted",
            words.accepted,
            tonnes(total.accepted_kg, lang),
            total.accepted_kg.to_string(),
            "kg",
            None,
        ),
        volume(
            "delivered",
            words.delivered,
            tonnes(total.delivered_kg, lang),
            total.delivered_kg.to_string(),
            "kg",
            None,
        ),
        volume(
            "deliveries",
            words.deliveries,
            number(total.shipments as f64, 0, lang),
            total.shipments.to_string(),
            "",
            None,
        ),
    ];
    for (band, km) in DISTANCE_BANDS_KM.iter().enumerate() {
        let share_bp = figures.share_within_bp[band];
        rows.push(volume_if(
            figures.distance_withheld,
            &format!("share_within_{km}_km"),
            &words.share_within.replace("{}", &km.to_string()),
            percent(share_bp, lang),
            csv_number(f64::from(share_bp) / 100.0, 2),
            "%",
            None,
        ));
    }
    let factor = format!("{} ({})", figures.emission_factor_source, figures.emission_factor_version);
    rows.extend([
        volume(
            "transport_distance",
            words.transport_distance,
            with_unit(number(figures.transport_km, 0, lang), "km", lang),
            csv_number(figures.transport_km, 1),
            "km",
            None,
        ),
        volume(
            "transport_co2",
            words.transport_co2,
            with_unit(number(figures.transport_co2_kg, 1, lang), "kg CO2e", lang),
            csv_number(figures.transport_co2_kg, 1),
            "kg CO2e",
            Some(factor),
        ),
        volume_if(
            figures.pallets_withheld,
            "eur_pallets_reused",
            words.pallets_reused,
            number(figures.pallets_reused as f64, 0, lang),
            figures.pallets_reused.to_string(),
            "",
            None,
        ),
        volume_if(
            figures.water_withheld,
            "process_water_reused",
            words.water_reused,
            with_unit(number(figures.water_reused_litres as f64 / 1000.0, 3, lang), "m3", lang),
            csv_number(figures.water_reused_litres as f64 / 1000.0, 3),
            "m3",
            None,
        ),
        count(
            "active_producers",
            &format!("{} · {}", words.active, words.producers),
            figures.active_producers,
        ),
        count(
            "active_receivers",
            &format!("{} · {}", words.active, words.receivers),
            figures.active_receivers,
        ),
        count("active_carriers", &format!("{} · {}", words.active, words.carriers), figures.active_carriers),
        count("partnerships", words.partnerships, figures.partnerships),
        count(
            "cross_border_partnerships",
            &format!("{} · {}", words.partnerships, words.cross_border),
            figures.cross_border_partnerships,
        ),
        volume(
            "gate_fees_avoided",
            words.gate_fees_avoided,
            with_unit(number(figures.gate_fees_avoided_cents as f64 / 100.0, 0, lang), "EUR", lang),
            csv_number(figures.gate_fees_avoided_cents as f64 / 100.0, 2),
            "EUR",
            Some(figures.disposal_reference_source.to_owned()),
        ),
    ]);
    rows
}

/// A cell of a number, or the withheld text.
fn cell(out: &mut String, value: Option<String>, withheld: &str) {
    match value {
        Some(value) => {
            let _ = write!(out, "<td class=\"n\">{}</td>", escape(&value));
        }
        None => {
            let _ = write!(out, "<td class=\"withheld\">{}</td>", escape(withheld));
        }
    }
}

fn csv_link(out: &mut String, dashboard: &Dashboard, table: Table, lang: Lang) {
    let _ = write!(
        out,
        "<p class=\"noprint muted\"><a href=\"{}\" download>CSV</a></p>",
        link(
            &format!("/territories/{}/{}.csv", escape(&dashboard.territory.code), table.key()),
            &dashboard.period.label,
            lang
        )
    );
}

fn flows_table(out: &mut String, id: &str, flows: &[Flow], lang: Lang) {
    let words = words(lang);
    let withheld = withheld_text(lang);
    let _ = write!(
        out,
        "<table id=\"{id}\"><tr><th>{}</th><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr>",
        words.origin, words.destination, words.deliveries, words.accepted
    );
    for flow in flows {
        let _ = write!(
            out,
            "<tr><td>{} <span class=\"muted\">{}</span></td><td>{} <span class=\"muted\">{}</span></td>",
            escape(&area_name(&flow.origin, lang)),
            escape(&flow.origin),
            escape(&area_name(&flow.destination, lang)),
            escape(&flow.destination)
        );
        if flow.withheld {
            let _ = write!(out, "<td class=\"withheld\" colspan=\"2\">{}</td>", escape(&withheld));
        } else {
            cell(out, Some(number(flow.shipments as f64, 0, lang)), &withheld);
            cell(out, Some(tonnes(flow.accepted_kg, lang)), &withheld);
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The country of a region's (or country's) code: `FR-67` and `FR` are in France.
fn country_of(code: &str) -> Option<Country> {
    code.parse::<Country>()
        .ok()
        .or_else(|| areas::territory(code).and_then(|territory| territory.countries.first().copied()))
}

/// Where a region's flows start and end on the map: the middle of its towns (of its country's,
/// for a country).
fn anchor(code: &str, lang: Lang) -> Option<charts::Place> {
    let country = code.parse::<Country>().ok();
    let towns: Vec<&areas::Town> = areas::towns()
        .iter()
        .filter(|town| match country {
            Some(country) => town.country == country,
            None => town.region == code,
        })
        .collect();
    if towns.is_empty() {
        return None;
    }
    let count = towns.len() as f64;
    Some(charts::Place {
        name: area_name(code, lang),
        latitude: towns.iter().map(|town| town.point.latitude()).sum::<f64>() / count,
        longitude: towns.iter().map(|town| town.point.longitude()).sum::<f64>() / count,
    })
}

fn town_place(town: &areas::Town) -> charts::Place {
    charts::Place {
        name: town.name.clone(),
        latitude: town.point.latitude(),
        longitude: town.point.longitude(),
    }
}

/// The region flows of `dashboard` that cross a border, as the map draws them.
fn map_flows(dashboard: &Dashboard, lang: Lang) -> Vec<MapFlow> {
    dashboard
        .by_region
        .iter()
        .filter(|flow| {
            matches!((country_of(&flow.origin), country_of(&flow.destination)), (Some(from), Some(to)) if from != to)
        })
        .filter_map(|flow| {
            Some(MapFlow {
                from: anchor(&flow.origin, lang)?,
                to: anchor(&flow.destination, lang)?,
                tonnes: flow.accepted_kg as f64 / 1000.0,
                label: if flow.withheld { String::new() } else { tonnes(flow.accepted_kg, lang) },
                withheld: flow.withheld,
            })
        })
        .collect()
}

/// The charts of `dashboard` in `lang`: tonnes per family, shares of distance, the map.
pub fn charts(dashboard: &Dashboard, lang: Lang) -> Result<[String; 3], charts::ChartError> {
    let words = words(lang);
    let withheld_short = words.withheld_short.to_owned();
    let axis_number = |value: f64| number(value, 1, lang);
    let figures = &dashboard.figures;
    let family_bars: Vec<Bar> = figures
        .families
        .iter()
        .map(|row| Bar {
            label: family_name(row.family, lang).to_owned(),
            value: row.volumes.accepted_kg as f64 / 1000.0,
            value_label: if row.withheld {
                withheld_short.clone()
            } else {
                tonnes(row.volumes.accepted_kg, lang)
            },
            withheld: row.withheld,
        })
        .collect();
    let families =
        charts::bars(words.by_family, &format!("{} (t)", words.accepted), &axis_number, &family_bars)?;
    let distance_bars: Vec<Bar> = DISTANCE_BANDS_KM
        .iter()
        .enumerate()
        .map(|(band, km)| {
            let share_bp = figures.share_within_bp[band];
            Bar {
                label: format!("≤ {km} km"),
                value: f64::from(share_bp) / 100.0,
                value_label: if figures.distance_withheld {
                    withheld_short.clone()
                } else {
                    percent(share_bp, lang)
                },
                withheld: figures.distance_withheld,
            }
        })
        .collect();
    let distances =
        charts::bars(words.distances, &format!("{} (%)", words.share), &axis_number, &distance_bars)?;
    let map_words = MapWords {
        caption: words.flows_map.to_owned(),
        public_flow: words.public_flow.to_owned(),
        withheld_flow: words.withheld_flow.to_owned(),
        no_flow: words.no_flow.to_owned(),
    };
    let territory = dashboard.territory;
    let towns: Vec<charts::Place> = areas::towns().iter().map(town_place).collect();
    let focus: Vec<charts::Place> = areas::towns()
        .iter()
        .filter(|town| match territory.kind {
            Kind::Country => territory.countries.contains(&town.country),
            Kind::Region => town.region == territory.code,
            Kind::Eurodistrict => town.eurodistrict.as_deref() == Some(territory.code.as_str()),
        })
        .map(town_place)
        .collect();
    let map = charts::flow_map(&map_words, &towns, &focus, &map_flows(dashboard, lang))?;
    Ok([families, distances, map])
}

/// The page of `dashboard` in `lang`, with the period picker around `this_year`.
pub fn render(dashboard: &Dashboard, this_year: i16, lang: Lang) -> Result<String, charts::ChartError> {
    let [families_chart, distances_chart, map] = charts(dashboard, lang)?;
    let words = words(lang);
    let withheld = withheld_text(lang);
    let figures = &dashboard.figures;
    let territory = dashboard.territory;
    let path = format!("/territories/{}", escape(&territory.code));
    let name = territory_name(territory, lang);
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, lang, &format!("{name} · {}", dashboard.period.label));
    out.push_str("</head><body>");
    language_switch(&mut out, &path, &dashboard.period);
    let kind = match territory.kind {
        Kind::Country => words.countries,
        Kind::Region => words.regions,
        Kind::Eurodistrict => words.eurodistricts,
    };
    let _ = write!(
        out,
        "<p class=\"muted\"><a href=\"{}\">{}</a> · {}</p><h1>{}</h1><p class=\"muted\">{} · {}: <strong id=\"period\">{}</strong></p>",
        link("/territories", &dashboard.period.label, lang),
        words.all_territories,
        kind,
        escape(&name),
        escape(&territory.code),
        words.period,
        escape(&dashboard.period.label),
    );
    period_picker(&mut out, &path, &dashboard.period, this_year, lang);
    let _ = write!(
        out,
        "<p class=\"muted\">{}</p>",
        escape(&words.privacy.replace("{}", &MIN_GROUP.to_string()))
    );

    let _ = write!(
        out,
        "<h2>{}</h2><table id=\"headline\"><tr><th>{}</th><th class=\"n\">{}</th></tr>",
        words.headline, words.indicator, words.value
    );
    for row in headline_rows(figures, lang) {
        let _ = write!(out, "<tr id=\"{}\"><th>{}", row.key, escape(&row.label));
        // The source under the label: a third column would not fit a phone's screen.
        if let Some(source) = &row.source {
            let label = if row.key == "transport_co2" { words.emission_factor } else { words.reference };
            let _ = write!(out, "<div class=\"source muted\">{label}: {}</div>", escape(source));
        }
        out.push_str("</th>");
        cell(&mut out, row.shown, &withheld);
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    csv_link(&mut out, dashboard, Table::Headline, lang);

    let _ = write!(out, "<h2>{}</h2>", words.by_family);
    if figures.families.is_empty() {
        let _ = write!(out, "<p>{}</p>", words.no_delivery);
    }
    let _ = write!(out, "<figure id=\"families-chart\">{families_chart}</figure>");
    let _ = write!(
        out,
        "<table id=\"families\"><tr><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr>",
        words.family, words.deliveries, words.accepted, words.delivered
    );
    for row in &figures.families {
        let _ = write!(out, "<tr><td>{}</td>", family_name(row.family, lang));
        if row.withheld {
            let _ = write!(out, "<td class=\"withheld\" colspan=\"3\">{}</td>", escape(&withheld));
        } else {
            let volumes = &row.volumes;
            cell(&mut out, Some(number(volumes.shipments as f64, 0, lang)), &withheld);
            cell(&mut out, Some(tonnes(volumes.accepted_kg, lang)), &withheld);
            cell(&mut out, Some(tonnes(volumes.delivered_kg, lang)), &withheld);
        }
        out.push_str("</tr>");
    }
    let _ = write!(out, "<tr><th>{}</th>", words.total);
    if figures.total_withheld {
        let _ = write!(out, "<td class=\"withheld\" colspan=\"3\">{}</td>", escape(&withheld));
    } else {
        cell(&mut out, Some(number(figures.total.shipments as f64, 0, lang)), &withheld);
        cell(&mut out, Some(tonnes(figures.total.accepted_kg, lang)), &withheld);
        cell(&mut out, Some(tonnes(figures.total.delivered_kg, lang)), &withheld);
    }
    out.push_str("</tr></table>");
    csv_link(&mut out, dashboard, Table::Families, lang);

    let _ =
        write!(out, "<h2>{}</h2><figure id=\"distances-chart\">{distances_chart}</figure>", words.distances);

    let _ = write!(out, "<h2>{}</h2><figure id=\"flows-map\">{map}</figure>", words.flows_map);
    let _ = write!(out, "<h2>{}</h2>", words.by_country);
    flows_table(&mut out, "flows-countries", &dashboard.by_country, lang);
    csv_link(&mut out, dashboard, Table::FlowsCountries, lang);
    let _ = write!(out, "<h2>{}</h2>", words.by_region);
    flows_table(&mut out, "flows-regions", &dashboard.by_region, lang);
    csv_link(&mut out, dashboard, Table::FlowsRegions, lang);
    out.push_str("</body></html>");
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// CSV.

/// `field` as a CSV field: quoted (quotes doubled) when it holds the separator, a quote or a
/// line end.
fn csv_field(field: &str) -> String {
    if field.contains([CSV_SEPARATOR, '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

fn csv_line(out: &mut String, fields: &[&str]) {
    let line: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
    out.push_str(&line.join(&CSV_SEPARATOR.to_string()));
    out.push_str("\r\n");
}

fn flag(withheld: bool) -> &'static str {
    if withheld { "true" } else { "false" }
}

/// The table `table` of `dashboard` as CSV (see the module's doc), names in `lang`.
pub fn csv(dashboard: &Dashboard, table: Table, lang: Lang) -> String {
    let figures = &dashboard.figures;
    let mut out = String::from("\u{feff}");
    match table {
        Table::Headline => {
            csv_line(&mut out, &["indicator", "name", "value", "unit", "withheld", "source"]);
            for row in headline_rows(figures, lang) {
                let value = row.csv_value.as_deref().unwrap_or("");
                let source = row.source.as_deref().unwrap_or("");
                csv_line(
                    &mut out,
                    &[&row.key, &row.label, value, row.csv_unit, flag(row.csv_value.is_none()), source],
                );
            }
        }
        Table::Families => {
            csv_line(&mut out, &["family", "name", "deliveries", "accepted_kg", "delivered_kg", "withheld"]);
            for row in &figures.families {
                let volumes = &row.volumes;
                let numbers = [
                    volumes.shipments.to_string(),
                    volumes.accepted_kg.to_string(),
                    volumes.delivered_kg.to_string(),
                ];
                let numbers =
                    numbers.each_ref().map(|number| if row.withheld { "" } else { number.as_str() });
                csv_line(
                    &mut out,
                    &[
                        row.family.key(),
                        family_name(row.family, lang),
                        numbers[0],
                        numbers[1],
                        numbers[2],
                        flag(row.withheld),
                    ],
                );
            }
            let total = &figures.total;
            let numbers =
                [total.shipments.to_string(), total.accepted_kg.to_string(), total.delivered_kg.to_string()];
            let numbers =
                numbers.each_ref().map(|number| if figures.total_withheld { "" } else { number.as_str() });
            csv_line(
                &mut out,
                &[
                    "total",
                    words(lang).total,
                    numbers[0],
                    numbers[1],
                    numbers[2],
                    flag(figures.total_withheld),
                ],
            );
        }
        Table::FlowsCountries | Table::FlowsRegions => {
            let flows =
                if table == Table::FlowsCountries { &dashboard.by_country } else { &dashboard.by_region };
            csv_line(
                &mut out,
                &[
                    "origin",
                    "origin_name",
                    "destination",
                    "destination_name",
                    "deliveries",
                    "accepted_kg",
                    "withheld",
                ],
            );
            for flow in flows {
                let (deliveries, accepted) = if flow.withheld {
                    (String::new(), String::new())
                } else {
                    (flow.shipments.to_string(), flow.accepted_kg.to_string())
                };
                csv_line(
                    &mut out,
                    &[
                        &flow.origin,
                        &area_name(&flow.origin, lang),
                        &flow.destination,
                        &area_name(&flow.destination, lang),
                        &deliveries,
                        &accepted,
                        flag(flow.withheld),
                    ],
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use symbiose_domain::lot::{LegalStatus, Place};
    use symbiose_domain::{Currency, GeoPoint, Money, Quantity, Unit};
    use symbiose_matching_contract::deal::{Deal, DealStatus};
    use uuid::Uuid;

    use super::*;
    use crate::facts::{Delivered, ShipmentFacts};

    /// 2026-06-15T12:00:00Z.
    const JUNE_MS: i64 = 1_781_524_800_000;

    fn place(lat: f64, lon: f64, country: Country) -> Place {
        Place { point: GeoPoint::new(lat, lon).unwrap(), country }
    }

    fn strasbourg() -> Place {
        place(48.5734, 7.7521, Country::Fr)
    }

    fn kehl() -> Place {
        place(48.5724, 7.8154, Country::De)
    }

    fn basel() -> Place {
        place(47.5596, 7.5886, Country::Ch)
    }

    fn id(number: u128) -> Uuid {
        Uuid::from_u128(number)
    }

    /// A delivery of `tonnes` of `family` from `seller` at `from` to `buyer` at `to`, over
    /// `distance_km`, accepted whole in June 2026.
    fn delivery(
        facts: &mut Facts,
        number: u128,
        (seller, from): (u128, Place),
        (buyer, to): (u128, Place),
        family: MaterialFamily,
        tonnes: i64,
        distance_km: f64,
    ) {
        let quantity = Quantity::new(tonnes * 1000, Unit::Tonne, true).unwrap();
        let deal = Deal {
            id: id(1000 + number),
            proposal_id: id(2000 + number),
            offer_id: id(3000 + number),
            request_id: id(4000 + number),
            seller: id(seller),
            buyer: id(buyer),
            family,
            waste_code: None,
            legal_status: LegalStatus::Waste,
            quantity,
            price_per_unit: Money::new(1_000, Currency::Eur).unwrap(),
            pickup: from,
            delivery: to,
            distance_km,
            documents: vec![],
            agreed_at_ms: JUNE_MS - 86_400_000,
            status: DealStatus::Agreed,
        };
        let shipment = ShipmentFacts {
            shipment_id: id(5000 + number),
            deal_id: deal.id,
            seller: id(seller),
            buyer: id(buyer),
            carrier: id(900),
            pickup: from,
            delivery: to,
            pickup_town: crate::areas::town_index_of(&from),
            delivery_town: crate::areas::town_index_of(&to),
            quantity,
            hazardous: false,
            prior_notification_number: None,
            road_distance_km: distance_km,
            co2_kg: distance_km * f64::from(tonnes as i32) * 0.105,
            booked_at_ms: JUNE_MS - 3_600_000,
            picked_up: Some((quantity, JUNE_MS - 1_800_000)),
            pallets_picked_up: None,
            borders: vec![],
            delivered: Some(Delivered {
                received: quantity,
                accepted_milli: tonnes * 1000,
                refused_milli: 0,
                at_ms: JUNE_MS,
            }),
            closed: None,
        };
        facts.deals.insert(deal.id, deal);
        facts.shipment_order.push(shipment.shipment_id);
        facts.shipments.insert(shipment.shipment_id, shipment);
    }

    /// Three producers of Strasbourg deliver plastics to three receivers of Kehl (2, 3 and 4 t,
    /// 8 km each), two producers of Kehl 1 t each to two receivers of Strasbourg, and a sixth
    /// pair of Strasbourg and Basel 5 t of metals (130 km): the flows to Switzerland (one pair)
    /// and back from Germany (two) are withheld, and together sum three producers and three
    /// receivers, so the flow to Germany is public; the metals' row is withheld and, by
    /// difference from the total, the plastics' too; the distances are withheld, the band beyond
    /// 100 km being the Basel pair's alone.
    fn facts() -> Facts {
        let mut facts = Facts { organizations: HashMap::new(), ..Facts::default() };
        for (number, tonnes) in [(1, 2), (2, 3), (3, 4)] {
            delivery(
                &mut facts,
                number,
                (number, strasbourg()),
                (100 + number, kehl()),
                MaterialFamily::Plastics,
                tonnes,
                8.0,
            );
        }
        for number in [5, 6] {
            delivery(
                &mut facts,
                number,
                (number, kehl()),
                (100 + number, strasbourg()),
                MaterialFamily::Plastics,
                1,
                8.0,
            );
        }
        delivery(&mut facts, 4, (4, strasbourg()), (104, basel()), MaterialFamily::Metals, 5, 130.0);
        facts
    }

    fn ortenau(facts: &Facts) -> Dashboard {
        dashboard(facts, areas::territory("strasbourg-ortenau").unwrap(), Period::parse("2026").unwrap())
    }

    fn csv_lines(text: &str) -> Vec<&str> {
        let text = text.strip_prefix('\u{feff}').expect("a byte order mark");
        assert!(text.ends_with("\r\n"), "{text:?}");
        text.split_terminator("\r\n").collect()
    }

    #[test]
    fn numbers_are_written_as_each_language_writes_them() {
        assert_eq!(number(12_345.5, 3, Lang::Fr), "12\u{202f}345,5");
        assert_eq!(number(12_345.5, 3, Lang::De), "12.345,5");
        assert_eq!(number(12_345.5, 3, Lang::En), "12,345.5");
        assert_eq!(number(9.0, 3, Lang::Fr), "9");
        assert_eq!(number(0.0004, 3, Lang::En), "0");
        assert_eq!(tonnes(9_000, Lang::En), "9\u{a0}t");
        assert_eq!(percent(6_923, Lang::En), "69.2%");
        assert_eq!(percent(10_000, Lang::Fr), "100\u{a0}%");
    }

    #[test]
    fn the_page_shows_the_public_figures_and_withholds_the_others() {
        let facts = facts();
        let dashboard = ortenau(&facts);
        let page = render(&dashboard, 2026, Lang::En).unwrap();
        // 16 t accepted from 6 producers to 6 receivers: the total is public.
        assert!(page.contains("<th>Tonnes accepted</th><td class=\"n\">16\u{a0}t</td>"), "{page}");
        assert!(page.contains("<th>Deliveries</th><td class=\"n\">6</td>"), "{page}");
        // 11 t of 16 within 50 km, but the 5 t beyond 100 km are one pair's: withheld.
        assert!(!page.contains("68.8%") && !page.contains("31.3%"), "{page}");
        assert!(
            page.contains(figures::DISPOSAL_REFERENCE_SOURCE)
                || page.contains(&escape(figures::DISPOSAL_REFERENCE_SOURCE))
        );
        assert!(page.contains(&escape(dashboard.figures.emission_factor_source)), "{page}");
        // The FR→DE flow is public, with its tonnes; FR→CH is withheld and shows no number.
        let countries =
            page.split("<table id=\"flows-countries\">").nth(1).unwrap().split("</table>").next().unwrap();
        assert!(countries.contains("France <span class=\"muted\">FR</span></td><td>Germany <span class=\"muted\">DE</span></td><td class=\"n\">3</td><td class=\"n\">9\u{a0}t</td>"), "{countries}");
        let swiss =
            countries.split("<tr>").find(|row| row.contains("Switzerland")).expect("the flow to Switzerland");
        assert!(swiss.contains("withheld (fewer than 3 organizations)"), "{swiss}");
        // No number but the 3 of the rule (and the 2 of the cell's colspan).
        assert!(
            !swiss
                .replace("fewer than 3", "")
                .replace("colspan=\"2\"", "")
                .chars()
                .any(|character| character.is_ascii_digit()),
            "{swiss}"
        );
        // Metals alone (one pair) is withheld, and so, by difference, plastics too.
        let families =
            page.split("<table id=\"families\">").nth(1).unwrap().split("</table>").next().unwrap();
        assert_eq!(families.matches("withheld (fewer than 3 organizations)").count(), 2, "{families}");
        // The charts: three SVG documents, the families named, a line per public flow.
        let svgs: Vec<&str> =
            page.split("<figure id=").skip(1).map(|figure| figure.split_once('>').unwrap().1).collect();
        assert_eq!(svgs.len(), 3);
        for svg in &svgs {
            assert!(svg.starts_with("<svg"), "{svg}");
            assert!(svg.contains("</svg>"), "{svg}");
        }
        for family in [MaterialFamily::Plastics, MaterialFamily::Metals] {
            assert!(svgs[0].contains(family.labels().en), "{}", svgs[0]);
        }
        assert!(svgs[1].contains("≤ 50 km"), "{}", svgs[1]);
        let (solid, dashes) = charts::drawn_flows(svgs[2]);
        assert_eq!(solid, 1, "FR-67 to DE-08317: {}", svgs[2]);
        assert!(dashes > 0, "FR-67 to CH-BS, dashed: {}", svgs[2]);
        assert!(svgs[2].contains("9 t") || svgs[2].contains("9\u{a0}t"), "{}", svgs[2]);
        assert!(svgs[2].contains("Basel-Stadt") && svgs[2].contains("Ortenaukreis"), "{}", svgs[2]);
        assert!(
            !svgs[2].contains("5\u{a0}t") && !svgs[2].contains("5 t"),
            "the withheld flow's tonnes: {}",
            svgs[2]
        );
        // Nothing fetched from anywhere, no script.
        for forbidden in ["<script", "src=", "<link", "url("] {
            assert!(!page.contains(forbidden), "{forbidden}");
        }
    }

    #[test]
    fn the_page_speaks_the_visitors_language() {
        let facts = facts();
        let dashboard = ortenau(&facts);
        let german = render(&dashboard, 2026, Lang::De).unwrap();
        assert!(
            german.contains("<html lang=\"de\">") && german.contains("Grenzüberschreitende Ströme"),
            "{german}"
        );
        assert!(german.contains("nicht veröffentlicht (weniger als 3 Organisationen)"), "{german}");
        assert!(german.contains("Frankreich"), "{german}");
        let french = render(&dashboard, 2026, Lang::Fr).unwrap();
        assert!(french.contains("non publié (moins de 3 organisations)"), "{french}");
        assert!(
            french.contains("href=\"/territories/strasbourg-ortenau?period=2026-Q2&amp;lang=fr\""),
            "{french}"
        );
        assert!(
            french.contains("href=\"/territories/strasbourg-ortenau/families.csv?period=2026&amp;lang=fr\""),
            "{french}"
        );
    }

    #[test]
    fn each_table_downloads_as_csv_with_withheld_cells_empty() {
        let facts = facts();
        let dashboard = ortenau(&facts);
        assert_eq!(
            csv_lines(&csv(&dashboard, Table::FlowsCountries, Lang::En)),
            [
                "origin;origin_name;destination;destination_name;deliveries;accepted_kg;withheld",
                "DE;Germany;FR;France;;;true",
                "FR;France;CH;Switzerland;;;true",
                "FR;France;DE;Germany;3;9000;false",
            ]
        );
        assert_eq!(
            csv_lines(&csv(&dashboard, Table::FlowsRegions, Lang::De)),
            [
                "origin;origin_name;destination;destination_name;deliveries;accepted_kg;withheld",
                "DE-08317;Ortenaukreis;FR-67;Bas-Rhin;;;true",
                "FR-67;Bas-Rhin;CH-BS;Basel-Stadt;;;true",
                "FR-67;Bas-Rhin;DE-08317;Ortenaukreis;3;9000;false",
            ]
        );
        assert_eq!(
            csv_lines(&csv(&dashboard, Table::Families, Lang::En)),
            [
                "family;name;deliveries;accepted_kg;delivered_kg;withheld",
                &format!("plastics;{};;;;true", MaterialFamily::Plastics.labels().en),
                &format!("metals;{};;;;true", MaterialFamily::Metals.labels().en),
                "total;Total;6;16000;16000;false",
            ]
        );
        let headline = csv(&dashboard, Table::Headline, Lang::En);
        let lines = csv_lines(&headline);
        assert_eq!(lines[0], "indicator;name;value;unit;withheld;source");
        assert_eq!(lines[1], "accepted;Tonnes accepted;16000;kg;false;");
        assert_eq!(lines[3], "deliveries;Deliveries;6;;false;");
        assert_eq!(lines[4], "share_within_50_km;Share within 50 km;;%;true;");
        assert_eq!(lines[6], "share_within_200_km;Share within 200 km;;%;true;");
        assert_eq!(lines[7], "transport_distance;Transport distance;170,0;km;false;");
        assert!(lines[8].starts_with("transport_co2;Transport CO2;"), "{}", lines[8]);
        assert!(lines[8].contains(dashboard.figures.emission_factor_version), "{}", lines[8]);
        assert_eq!(lines[11], "active_producers;Active organizations · producers;6;;false;");
        assert_eq!(lines[15], "cross_border_partnerships;Partnerships · of which cross-border;6;;false;");
        assert!(lines[16].starts_with("gate_fees_avoided;Disposal costs avoided;"), "{}", lines[16]);
        assert_eq!(lines.len(), 17);
        assert_eq!(csv_file_name(&dashboard, Table::Headline), "strasbourg-ortenau-2026-headline.csv");
    }

    #[test]
    fn a_territory_of_too_few_organizations_is_withheld_whole() {
        let mut facts = Facts::default();
        delivery(&mut facts, 1, (1, strasbourg()), (101, kehl()), MaterialFamily::Plastics, 2, 8.0);
        let dashboard = ortenau(&facts);
        let page = render(&dashboard, 2026, Lang::En).unwrap();
        let headline =
            page.split("<table id=\"headline\">").nth(1).unwrap().split("</table>").next().unwrap();
        assert!(
            headline.contains(
                "<th>Tonnes accepted</th><td class=\"withheld\">withheld (fewer than 3 organizations)</td>"
            ),
            "{headline}"
        );
        assert!(
            !headline.contains(">0\u{a0}t<") && !headline.contains(">0<"),
            "withheld, never zero: {headline}"
        );
        let lines = csv(&dashboard, Table::Headline, Lang::En);
        assert!(csv_lines(&lines).contains(&"accepted;Tonnes accepted;;kg;true;"), "{lines}");
        let (solid, dashes) = charts::drawn_flows(page.split("<figure id=\"flows-map\">").nth(1).unwrap());
        assert_eq!(solid, 0);
        assert!(dashes > 0);
    }

    #[test]
    fn the_index_lists_every_territory_by_kind() {
        let page = index(&Period::parse("2026-Q3").unwrap(), 2026, Lang::De);
        for code in ["FR", "DE-08317", "strasbourg-ortenau", "CH-BS"] {
            assert!(
                page.contains(&format!("href=\"/territories/{code}?period=2026-Q3&amp;lang=de\"")),
                "{code}: {page}"
            );
        }
        assert!(page.contains("Eurodistrikte") && page.contains("Letztes Jahr"), "{page}");
        assert!(page.contains("href=\"/territories?period=2025&amp;lang=de\""), "{page}");
        assert!(!page.contains("<script"));
    }
}
