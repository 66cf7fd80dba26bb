//! `symbiose listing import`: a partner's file of listings (CSV or JSON lines) sent to
//! `ImportListings` in chunks, and its report printed: the counts, then each refused line with
//! the field at fault. The exit status is 1 when a line was refused.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;

use crate::cli::{Authed, Output, status_error};

/// Bytes of the file each message carries: a quarter of the server's default message size.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Largest file the server imports, in bytes (its `IMPORT_BYTES_MAX`): a larger one is refused
/// here, before it is read.
const IMPORT_BYTES_MAX: u64 = 64 * 1024 * 1024;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file: CSV with a header row, or JSON lines (the README's "Importing listings").
    file: PathBuf,
    /// The import's id, 1 to 64 bytes: the same file sent again under it applies only the
    /// lines not applied yet.
    #[arg(long = "id")]
    import_id: String,
    /// The file's format; by default from its extension (.jsonl, .ndjson: JSON lines; any
    /// other: CSV).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Publish each listing in the append that creates it (otherwise they are drafts).
    #[arg(long)]
    publish: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    Csv,
    Jsonl,
}

/// Sends the file and prints the report; `Ok(false)` when a line was refused.
pub(crate) async fn import(
    mut client: ListingServiceClient<Authed>,
    arguments: ImportArgs,
    output: Output,
) -> anyhow::Result<bool> {
    let ImportArgs { file, import_id, format, publish } = arguments;
    let format = match format.unwrap_or_else(|| format_of(&file)) {
        FormatArg::Csv => listings::ImportFormat::Csv,
        FormatArg::Jsonl => listings::ImportFormat::JsonLines,
    };
    // Read whole before the call: a read that failed half-way must not end the stream, which
    // the server would take for the end of a shorter file.
    let size = tokio::fs::metadata(&file).await.with_context(|| format!("reading {}", file.display()))?.len();
    anyhow::ensure!(size <= IMPORT_BYTES_MAX, "{}: larger than {IMPORT_BYTES_MAX} bytes", file.display());
    let bytes = tokio::fs::read(&file).await.with_context(|| format!("reading {}", file.display()))?;
    let header = listings::ImportHeader { import_id, format: format.into(), publish };
    let mut messages = vec![listings::ImportListingsRequest {
        part: Some(listings::import_listings_request::Part::Header(header)),
    }];
    messages.extend(bytes.chunks(CHUNK_BYTES).map(|chunk| listings::ImportListingsRequest {
        part: Some(listings::import_listings_request::Part::Chunk(chunk.to_vec())),
    }));
    drop(bytes);
    let progress = crate::progress::Spinner::start(&format!("importing {}", file.display()));
    let response =
        client.import_listings(tonic::codegen::tokio_stream::iter(messages)).await.map_err(status_error);
    progress.done();
    let response = response?.into_inner();
    if output.json(&response)? {
        return Ok(response.refused == 0);
    }
    let mut counts = crate::cli_output::table(&[]);
    counts.add_row(["lines", &response.lines.to_string()]);
    counts.add_row(["created", &response.created.to_string()]);
    counts.add_row(["already present", &response.already_present.to_string()]);
    counts.add_row(["refused", &response.refused.to_string()]);
    crate::cli_output::print_table(&mut counts);
    if !response.refusals.is_empty() {
        println!();
        let mut refusals = crate::cli_output::table(&["line", "field", "reason"]);
        for refusal in &response.refusals {
            refusals.add_row([refusal.line.to_string(), refusal.field.clone(), refusal.reason.clone()]);
        }
        crate::cli_output::print_table(&mut refusals);
    }
    if response.refusals_omitted > 0 {
        println!("... and {} more refused lines", response.refusals_omitted);
    }
    Ok(response.refused == 0)
}

/// JSON lines for `.jsonl` and `.ndjson` files, CSV for any other.
fn format_of(file: &Path) -> FormatArg {
    match file.extension().and_then(|extension| extension.to_str()) {
        Some(extension)
            if extension.eq_ignore_ascii_case("jsonl") || extension.eq_ignore_ascii_case("ndjson") =>
        {
            FormatArg::Jsonl
        }
        _ => FormatArg::Csv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_follows_the_extension_unless_said() {
        assert_eq!(format_of(Path::new("offers.jsonl")), FormatArg::Jsonl);
        assert_eq!(format_of(Path::new("offers.NDJSON")), FormatArg::Jsonl);
        assert_eq!(format_of(Path::new("offers.csv")), FormatArg::Csv);
        assert_eq!(format_of(Path::new("offers")), FormatArg::Csv);
    }
}
