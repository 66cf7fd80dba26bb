//! The public page of a passport, in French, German or English: what a person holding a phone
//! in front of a lot reads, and the same data as JSON-LD (schema.org) for machines.
//!
//! A page is built from a [`Public`], the part of a passport anyone may see: organizations by
//! name and town only, never an address, a contact or an id of theirs. It is one HTML document
//! with its style inline and its QR code drawn inline as SVG: no script, no font, no image or
//! style sheet fetched from anywhere, so it is small, fast on a poor connection and printable.

use std::fmt::Write as _;

use symbiose_domain::{Country, MaterialFamily};
use symbiose_passports_contract::instructions::Scope;
use symbiose_passports_contract::passport::{Basis, Subject, Texts};
use symbiose_web::html::escape;
use symbiose_web::lang::Lang;

use crate::custody::{Step, StepKind};
use crate::grpc::urls;
use crate::instructions::Published;
use crate::passport::Stage;
use crate::view::{HeldPassport, PassportsView};

/// An input passport as a derived passport's page names it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputLink {
    pub name: String,
    pub url: String,
    pub share_bp: u32,
}

/// What anyone may see of a published or withdrawn passport.
#[derive(Debug, Clone, PartialEq)]
pub struct Public {
    pub passport_id: String,
    pub page_url: String,
    /// The GS1 Digital Link, when a GTIN is given.
    pub digital_link: Option<String>,
    pub individual: bool,
    pub record: crate::passport::Record,
    pub owner_name: Option<String>,
    pub custody: Vec<Step>,
    pub instructions: Vec<Published>,
    pub inputs: Vec<InputLink>,
}

impl Public {
    /// The public part of `held`; `None` for a passport never published, which is its owner's
    /// only.
    pub fn of(view: &PassportsView, held: &HeldPassport, base_url: &str) -> Option<Public> {
        let record = &held.record;
        if !record.is_public() {
            return None;
        }
        let (page_url, digital_link) = urls(base_url, held);
        let inputs = record
            .declaration
            .inputs
            .iter()
            .filter_map(|input| {
                let held = view.passports.get(&input.passport_id).filter(|held| held.record.is_public())?;
                Some(InputLink {
                    name: held.record.declaration.name.clone(),
                    url: urls(base_url, held).0,
                    share_bp: input.share_bp,
                })
            })
            .collect();
        Some(Public {
            passport_id: record.passport_id.to_string(),
            page_url,
            digital_link: (!digital_link.is_empty()).then_some(digital_link),
            individual: matches!(record.subject, Subject::Delivery(_)),
            owner_name: view.custody.organizations.get(&record.owner).cloned(),
            custody: view.custody.chain(record.subject),
            instructions: view
                .instructions_for(record.declaration.family, record.declaration.waste_code)
                .into_iter()
                .cloned()
                .collect(),
            inputs,
            record: record.clone(),
        })
    }

    /// What the QR code of the passport opens: its Digital Link when it has one (a GS1 scanner
    /// reads the GTIN and batch out of it), else its page.
    pub fn qr_url(&self) -> &str {
        self.digital_link.as_deref().unwrap_or(&self.page_url)
    }
}

/// The words of the page, in one language.
struct Words {
    lang: &'static str,
    composition: &'static str,
    material: &'static str,
    share: &'static str,
    basis: &'static str,
    document: &'static str,
    recycled: &'static str,
    story: &'static str,
    end_of_life: &'static str,
    advice: &'static str,
    made_from: &'static str,
    by: &'static str,
    source: &'static str,
    withdrawn: &'static str,
    identifiers: &'static str,
    batch: &'static str,
    passport: &'static str,
    labels: &'static str,
    no_instructions: &'static str,
    family: &'static str,
    waste_code: &'static str,
    not_found_title: &'static str,
    not_found_text: &'static str,
}

const FR: Words = Words {
    lang: "fr",
    composition: "Composition",
    material: "Matière",
    share: "Part",
    basis: "Origine de l'information",
    document: "Document",
    recycled: "Contenu recyclé",
    story: "Histoire du lot",
    end_of_life: "Fin de vie",
    advice: "Réparer et réemployer",
    made_from: "Fabriqué à partir de",
    by: "par",
    source: "Source",
    withdrawn: "Ce passeport a été retiré",
    identifiers: "Identifiants",
    batch: "Lot",
    passport: "Passeport matière",
    labels: "Planche d'étiquettes (PDF)",
    no_instructions: "Aucune consigne publiée pour cette matière.",
    family: "Famille",
    waste_code: "Code déchet",
    not_found_title: "Passeport introuvable",
    not_found_text: "Aucun passeport publié ne porte cette adresse.",
};

const DE: Words = Words {
    lang: "de",
    composition: "Zusammensetzung",
    material: "Material",
    share: "Anteil",
    basis: "Grundlage der Angabe",
    document: "Nachweis",
    recycled: "Rezyklatanteil",
    story: "Geschichte der Partie",
    end_of_life: "Lebensende",
    advice: "Reparieren und wiederverwenden",
    made_from: "Hergestellt aus",
    by: "von",
    source: "Quelle",
    withdrawn: "Dieser Pass wurde zurückgezogen",
    identifiers: "Kennungen",
    batch: "Charge",
    passport: "Materialpass",
    labels: "Etikettenbogen (PDF)",
    no_instructions: "Für dieses Material sind keine Hinweise veröffentlicht.",
    family: "Materialgruppe",
    waste_code: "Abfallschlüssel",
    not_found_title: "Pass nicht gefunden",
    not_found_text: "Unter dieser Adresse ist kein Pass veröffentlicht.",
};

const EN: Words = Words {
    lang: "en",
    composition: "Composition",
    material: "Material",
    share: "Share",
    basis: "Basis",
    document: "Document",
    recycled: "Recycled content",
    story: "Story of the lot",
    end_of_life: "End of life",
    advice: "Repair and reuse",
    made_from: "Made from",
    by: "by",
    source: "Source",
    withdrawn: "This passport was withdrawn",
    identifiers: "Identifiers",
    batch: "Batch",
    passport: "Material passport",
    labels: "Sheet of labels (PDF)",
    no_instructions: "No instructions are published for this material.",
    family: "Family",
    waste_code: "Waste code",
    not_found_title: "Passport not found",
    not_found_text: "No published passport has this address.",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Fr => &FR,
        Lang::De => &DE,
        Lang::En => &EN,
    }
}

/// `texts` in `lang`, or in another language when that one is not given (English, French,
/// German, in that order).
pub fn pick(texts: &Texts, lang: Lang) -> &str {
    let own = match lang {
        Lang::Fr => &texts.fr,
        Lang::De => &texts.de,
        Lang::En => &texts.en,
    };
    [own, &texts.en, &texts.fr, &texts.de]
        .into_iter()
        .find(|text| !text.is_empty())
        .map_or("", String::as_str)
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

fn family_name(family: MaterialFamily, lang: Lang) -> &'static str {
    let labels = family.labels();
    match lang {
        Lang::Fr => labels.fr,
        Lang::De => labels.de,
        Lang::En => labels.en,
    }
}

fn basis_name(basis: Basis, lang: Lang) -> &'static str {
    match (lang, basis) {
        (Lang::Fr, Basis::Declared) => "déclarée",
        (Lang::Fr, Basis::Analysed) => "analysée",
        (Lang::Fr, Basis::Certified) => "certifiée",
        (Lang::De, Basis::Declared) => "erklärt",
        (Lang::De, Basis::Analysed) => "analysiert",
        (Lang::De, Basis::Certified) => "zertifiziert",
        (Lang::En, Basis::Declared) => "declared",
        (Lang::En, Basis::Analysed) => "analysed",
        (Lang::En, Basis::Certified) => "certified",
    }
}

fn step_name(kind: StepKind, lang: Lang) -> &'static str {
    match (lang, kind) {
        (Lang::Fr, StepKind::Origin) => "Origine",
        (Lang::Fr, StepKind::Deal) => "Vente conclue",
        (Lang::Fr, StepKind::Pickup) => "Enlèvement",
        (Lang::Fr, StepKind::Border) => "Passage de frontière",
        (Lang::Fr, StepKind::Delivery) => "Livraison",
        (Lang::Fr, StepKind::Recovery) => "Valorisation",
        (Lang::De, StepKind::Origin) => "Herkunft",
        (Lang::De, StepKind::Deal) => "Verkauf vereinbart",
        (Lang::De, StepKind::Pickup) => "Abholung",
        (Lang::De, StepKind::Border) => "Grenzübertritt",
        (Lang::De, StepKind::Delivery) => "Lieferung",
        (Lang::De, StepKind::Recovery) => "Verwertung",
        (Lang::En, StepKind::Origin) => "Origin",
        (Lang::En, StepKind::Deal) => "Deal agreed",
        (Lang::En, StepKind::Pickup) => "Pickup",
        (Lang::En, StepKind::Border) => "Border crossed",
        (Lang::En, StepKind::Delivery) => "Delivery",
        (Lang::En, StepKind::Recovery) => "Recovery",
    }
}

/// A share in basis points as a percentage with up to two decimals: 9700 is "97 %".
pub fn percent(share_bp: u32, lang: Lang) -> String {
    let whole = share_bp / 100;
    let hundredths = share_bp % 100;
    let separator = if lang == Lang::En { "." } else { "," };
    let number = match hundredths {
        0 => whole.to_string(),
        h if h % 10 == 0 => format!("{whole}{separator}{}", h / 10),
        h => format!("{whole}{separator}{h:02}"),
    };
    if lang == Lang::En { format!("{number}%") } else { format!("{number}\u{a0}%") }
}

fn date(at_ms: i64, country: Option<Country>) -> String {
    country.unwrap_or(Country::Fr).date_at(at_ms).to_string()
}

const STYLE: &str = "body{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:46rem;padding:1rem;color:#1b1b1b}\
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.4rem 0 .4rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #eee;vertical-align:top}\
.muted{color:#555;font-size:.9rem}.warn{background:#fde2e1;border:1px solid #c62828;padding:.6rem;margin:.6rem 0}\
nav a{margin-right:.6rem}ol{padding-left:1.2rem}li{margin:.3rem 0}.qr{width:9rem;height:9rem;float:right;margin:0 0 .5rem .5rem}\
@media print{nav,.noprint{display:none}body{max-width:none}}";

fn head(out: &mut String, words: &Words, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style>",
        words.lang,
        escape(title)
    );
}

fn language_switch(out: &mut String, page_url: &str) {
    out.push_str("<nav class=\"noprint\">");
    for (code, name) in [("fr", "Français"), ("de", "Deutsch"), ("en", "English")] {
        let _ = write!(
            out,
            "<a href=\"{}?lang={code}\" hreflang=\"{code}\" lang=\"{code}\">{name}</a>",
            escape(page_url)
        );
    }
    out.push_str("</nav>");
}

/// The page of `public` in `lang`, with `qr_svg` (its QR code) drawn in.
pub fn render(public: &Public, lang: Lang, qr_svg: &str) -> String {
    let words = words(lang);
    let declaration = &public.record.declaration;
    let mut out = String::with_capacity(16 * 1024);
    head(&mut out, words, &declaration.name);
    // `<`, `>` and `&` escaped inside the JSON, so that no name can end the script element or
    // open a comment in it.
    let data =
        json_ld(public).to_string().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026");
    let _ = write!(out, "<script type=\"application/ld+json\">{data}</script></head><body>");
    language_switch(&mut out, &public.page_url);
    let _ = write!(out, "<div class=\"qr\" role=\"img\" aria-label=\"QR\">{qr_svg}</div>");
    let _ = write!(out, "<p class=\"muted\">{}</p><h1>{}</h1>", words.passport, escape(&declaration.name));
    if public.record.stage == Stage::Withdrawn {
        let at = public.record.withdrawn_at_ms.map(|at| date(at, None)).unwrap_or_default();
        let _ = write!(
            out,
            "<p class=\"warn\" id=\"withdrawn\"><strong>{}</strong> ({at}): {}</p>",
            words.withdrawn,
            escape(public.record.withdrawal_reason.as_deref().unwrap_or_default())
        );
    }
    let description = pick(&declaration.description, lang);
    if !description.is_empty() {
        let _ = write!(out, "<p>{}</p>", escape(description));
    }
    let _ = write!(out, "<p class=\"muted\">{}: {}", words.family, family_name(declaration.family, lang));
    if let Some(code) = declaration.waste_code {
        let _ = write!(out, " · {}: {}", words.waste_code, escape(&code.to_string()));
    }
    if let Some(owner) = &public.owner_name {
        let _ = write!(out, " · {} {}", words.by, escape(owner));
    }
    out.push_str("</p>");

    let _ = write!(
        out,
        "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        words.composition, words.material, words.share, words.basis, words.document
    );
    for component in &declaration.composition {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&component.material),
            percent(component.share_bp, lang),
            basis_name(component.basis, lang),
            escape(component.document.as_deref().unwrap_or("—"))
        );
    }
    let _ = write!(
        out,
        "</table><p><strong>{}: {}</strong></p>",
        words.recycled,
        percent(declaration.recycled_content_bp, lang)
    );
    if !public.inputs.is_empty() {
        let _ = write!(out, "<h2>{}</h2><ul>", words.made_from);
        for input in &public.inputs {
            let _ = write!(
                out,
                "<li><a href=\"{}\">{}</a> ({})</li>",
                escape(&input.url),
                escape(&input.name),
                percent(input.share_bp, lang)
            );
        }
        out.push_str("</ul>");
    }

    let _ = write!(out, "<h2>{}</h2><ol id=\"story\">", words.story);
    for step in &public.custody {
        story_step(&mut out, step, lang);
    }
    out.push_str("</ol>");

    let _ = write!(out, "<h2>{}</h2>", words.end_of_life);
    if public.instructions.is_empty() {
        let _ = write!(out, "<p class=\"muted\">{}</p>", words.no_instructions);
    }
    for published in &public.instructions {
        let _ = write!(
            out,
            "<p>{}</p><p class=\"muted\">{} {}",
            escape(pick(&published.text, lang)),
            words.by,
            escape(&published.institution_name)
        );
        let scope = match &published.scope {
            Scope::Family(family) => family_name(*family, lang).to_owned(),
            Scope::WasteCode(code) => code.to_string(),
        };
        let _ = write!(out, " ({}) · {}: ", escape(&scope), words.source);
        match &published.source.url {
            Some(url) => {
                let _ = write!(
                    out,
                    "<a href=\"{}\" rel=\"nofollow noopener\">{}</a>",
                    escape(url),
                    escape(&published.source.title)
                );
            }
            None => out.push_str(&escape(&published.source.title)),
        }
        out.push_str("</p>");
    }
    let advice = pick(&declaration.advice, lang);
    if !advice.is_empty() {
        let _ = write!(out, "<h2>{}</h2><p>{}</p>", words.advice, escape(advice));
    }

    let _ = write!(out, "<h2>{}</h2><p class=\"muted\">", words.identifiers);
    if let Some(gtin) = &declaration.gtin {
        let _ = write!(out, "GTIN {} · ", escape(gtin));
    }
    if let Some(batch) = &declaration.batch {
        let _ = write!(out, "{} {} · ", words.batch, escape(batch));
    }
    let _ = write!(
        out,
        "<a href=\"{url}\">{url}</a></p><p class=\"noprint muted\"><a href=\"{page}/labels.pdf\">{}</a> · <a href=\"{page}/qr.png\">QR (PNG)</a> · <a href=\"{page}/qr.svg\">QR (SVG)</a> · <a href=\"{page}/passport.jsonld\">JSON-LD</a></p></body></html>",
        words.labels,
        url = escape(public.qr_url()),
        page = escape(&public.page_url),
    );
    out
}

fn story_step(out: &mut String, step: &Step, lang: Lang) {
    let _ = write!(
        out,
        "<li><strong>{}</strong> · {}",
        step_name(step.kind, lang),
        date(step.at_ms, step.country)
    );
    if let Some(town) = &step.town {
        let _ = write!(out, " · {}", escape(town));
    }
    if let Some(country) = step.country.filter(|_| step.kind != StepKind::Border) {
        let _ = write!(out, " ({})", country_name(country, lang));
    }
    if let Some(country) = step.border_country {
        let _ = write!(out, " → {}", country_name(country, lang));
    }
    if let Some(organization) = &step.organization {
        let _ = write!(out, " · {}", escape(organization));
    }
    if step.kind == StepKind::Delivery && step.distance_m > 0 {
        let km = step.distance_m.div_ceil(1000);
        // Tenths of a kilogram, rounded, with the language's decimal separator.
        let tenths = step.co2_g.saturating_add(50) / 100;
        let separator = if lang == Lang::En { "." } else { "," };
        let _ = write!(out, " · {km} km · {}{separator}{} kg CO2e", tenths / 10, tenths % 10);
    }
    if let Some(operation) = &step.recovery_operation {
        let _ = write!(out, " · {}", escape(operation));
    }
    out.push_str("</li>");
}

/// The page that answers an address no published passport has: plain, in the visitor's
/// language, with nothing about why.
pub fn not_found(lang: Lang) -> String {
    let words = words(lang);
    let mut out = String::new();
    head(&mut out, words, words.not_found_title);
    let _ = write!(
        out,
        "</head><body><h1>{}</h1><p>{}</p></body></html>",
        words.not_found_title, words.not_found_text
    );
    out
}

/// The passport as schema.org JSON-LD: a `Product` (an `IndividualProduct` for a delivered
/// lot), its material and recycled content, its maker by name and town, its Digital Link.
pub fn json_ld(public: &Public) -> serde_json::Value {
    let declaration = &public.record.declaration;
    let origin = public.custody.iter().find(|step| step.kind == StepKind::Origin);
    let mut product = serde_json::json!({
        "@context": "https://schema.org",
        "@type": if public.individual { "IndividualProduct" } else { "Product" },
        "@id": public.page_url,
        "url": public.page_url,
        "identifier": public.passport_id,
        "name": declaration.name,
        "category": declaration.family.labels().en,
        "material": declaration.composition.iter().map(|component| component.material.clone()).collect::<Vec<_>>(),
        "additionalProperty": declaration.composition.iter().map(|component| serde_json::json!({
            "@type": "PropertyValue",
            "name": component.material,
            "value": f64::from(component.share_bp) / 100.0,
            "unitText": "%",
            "description": basis_name(component.basis, Lang::En),
        })).chain(std::iter::once(serde_json::json!({
            "@type": "PropertyValue",
            "propertyID": "recycledContent",
            "name": "Recycled content",
            "value": f64::from(declaration.recycled_content_bp) / 100.0,
            "unitText": "%",
        }))).collect::<Vec<_>>(),
    });
    let object = product.as_object_mut().expect("an object");
    let description = pick(&declaration.description, Lang::En);
    if !description.is_empty() {
        object.insert("description".to_owned(), description.into());
    }
    if let Some(gtin) = &declaration.gtin {
        object.insert("gtin14".to_owned(), gtin.clone().into());
    }
    if let Some(link) = &public.digital_link {
        object.insert("hasGS1DigitalLink".to_owned(), link.clone().into());
    }
    if let Some(batch) = &declaration.batch {
        object.insert("serialNumber".to_owned(), batch.clone().into());
    }
    if let Some(owner) = &public.owner_name {
        let mut organization = serde_json::json!({ "@type": "Organization", "name": owner });
        if let Some(origin) = origin {
            organization["address"] = serde_json::json!({
                "@type": "PostalAddress",
                "addressLocality": origin.town,
                "addressCountry": origin.country.map(|country| country.code()),
            });
        }
        object.insert("manufacturer".to_owned(), organization);
    }
    if let Some(country) = origin.and_then(|origin| origin.country) {
        object.insert(
            "countryOfOrigin".to_owned(),
            serde_json::json!({ "@type": "Country", "name": country.code() }),
        );
    }
    if !public.inputs.is_empty() {
        let inputs: Vec<serde_json::Value> = public
            .inputs
            .iter()
            .map(|input| serde_json::json!({ "@type": "Product", "@id": input.url, "name": input.name }))
            .collect();
        object.insert("isRelatedTo".to_owned(), inputs.into());
    }
    if public.record.stage == Stage::Withdrawn {
        object.insert("disambiguatingDescription".to_owned(), "withdrawn".into());
    }
    product
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_read_as_percentages_in_each_language() {
        assert_eq!(percent(9_700, Lang::En), "97%");
        assert_eq!(percent(9_750, Lang::Fr), "97,5\u{a0}%");
        assert_eq!(percent(5, Lang::De), "0,05\u{a0}%");
        assert_eq!(percent(10_000, Lang::En), "100%");
    }

    #[test]
    fn a_text_falls_back_to_another_language_when_its_own_is_missing() {
        let texts = Texts { en: String::new(), fr: "Bonjour".to_owned(), de: "Hallo".to_owned() };
        assert_eq!(pick(&texts, Lang::De), "Hallo");
        assert_eq!(pick(&texts, Lang::En), "Bonjour");
        assert_eq!(pick(&Texts::default(), Lang::Fr), "");
    }

    #[test]
    fn the_not_found_page_says_so_in_the_visitors_language_and_nothing_else() {
        let page = not_found(Lang::De);
        assert!(page.contains("Pass nicht gefunden"), "{page}");
        assert!(!page.contains("<script"), "{page}");
    }
}
