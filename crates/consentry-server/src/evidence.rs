//! The auditor's endpoints — everything `consentry audit --offline` needs — and audit runs. Each handler calls one
//! use case of `consentry_app::evidence` (or `Session::receipt`) and renders it; the proofs, the bundle and the
//! run records are made there.
//!
//! Evidence readers (auditors and operators, [`EvidenceReader`]): signed tree heads (`/v1/log/checkpoint`,
//! `/v1/log/checkpoints[/{size}]`), the public key, inclusion and consistency proofs, any entry's receipt, and the
//! evidence bundle as a tar download. Operators ([`Operator`]): `POST /v1/audits` runs the online audit now and
//! records it; `GET /v1/audits[/{id}]` reads the records.
//!
//! `POST /v1/audits` answers 202 at once with the run to poll, not when the audit is done: the online audit of the
//! 20,000-member demo (52,000 log entries) takes under a second in a release build but 36 s in a debug one, past
//! the 30 s request timeout, and a log many times the demo's would take as long in release.

use crate::auth::{EvidenceReader, Operator};
use crate::problem::{Problem, json_value};
use crate::{Shared, call};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use consentry_app::audit_runs::{AuditRecord, AuditRun, AuditStatus};
use consentry_app::evidence::{ConsistencyProof, InclusionProof};
use consentry_app::witness::{CheckpointNote, CosignatureSubmission, StoredCosignature};
use consentry_ledger::SignedTreeHead;
use serde_json::{Value, json};
use std::io::Write;

/// Bytes per chunk of the bundle download.
const CHUNK: usize = 64 * 1024;

/// The evidence and audit-run routes, for the service's route table.
pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/v1/log/checkpoint", get(latest_checkpoint))
        .route("/v1/log/checkpoint/note", get(checkpoint_note))
        .route("/v1/log/cosignatures", post(add_cosignature))
        .route("/v1/log/checkpoints", get(all_checkpoints))
        .route("/v1/log/checkpoints/{size}", get(checkpoint_at_size))
        .route("/v1/log/public-key", get(public_key))
        .route("/tlog/checkpoint", get(tlog_checkpoint))
        .route("/tlog/tile/{*path}", get(tlog_tile))
        .route("/v1/log/proofs/inclusion", get(inclusion_proof))
        .route("/v1/log/proofs/consistency", get(consistency_proof))
        .route("/v1/log/receipts/{seq}", get(receipt))
        .route("/v1/evidence/bundle", get(bundle))
        .route("/v1/audits", get(list_audits).post(run_audit))
        .route("/v1/audits/{id}", get(show_audit))
}

/// The paths of this module, for the service's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        latest_checkpoint,
        checkpoint_note,
        add_cosignature,
        all_checkpoints,
        checkpoint_at_size,
        public_key,
        tlog_checkpoint,
        tlog_tile,
        inclusion_proof,
        consistency_proof,
        receipt,
        bundle,
        run_audit,
        list_audits,
        show_audit
    ),
    components(schemas(
        SignedTreeHeadSchema,
        PublicKeySchema,
        InclusionProof,
        ConsistencyProof,
        CheckpointNote,
        CosignatureSubmission,
        StoredCosignature,
        AuditRecord,
        AuditRun,
        AuditStatus
    ))
)]
pub struct EvidenceApi;

/// A signed tree head as the ledger signs and serialises it (`consentry_ledger::SignedTreeHead`).
#[derive(utoipa::ToSchema)]
#[schema(as = SignedTreeHead)]
#[allow(dead_code)] // a schema only: the body is the ledger's own type
struct SignedTreeHeadSchema {
    /// Number of log entries covered.
    tree_size: u64,
    /// RFC 9162 Merkle root (BLAKE3) of those entries, hex.
    root_hash: String,
    /// The hash chain's value after the last covered entry, hex.
    chain_hash: String,
    /// When the head was signed (Unix seconds).
    timestamp: i64,
    /// BLAKE3 of the signing public key, hex.
    log_id: String,
    /// Ed25519 signature over `"consentry-sth-v1\0" ‖ u64 tree_size ‖ root ‖ chain ‖ i64 timestamp` (big-endian), hex.
    signature: String,
}

/// The ledger's public key.
#[derive(utoipa::ToSchema)]
#[schema(as = PublicKey)]
#[allow(dead_code)] // a schema only
struct PublicKeySchema {
    /// Ed25519 public key, hex (as `ledger.pub`).
    public_key: String,
    /// BLAKE3 of the key bytes, hex: the `log_id` every signed tree head names.
    log_id: String,
}

/// A path segment that is not what the route takes: 400, saying what it takes.
fn bad_path(e: PathRejection, what: &str) -> Problem {
    Problem::bad_input(format!("{what} ({})", e.body_text()))
}

/// A query that does not parse: 400, saying what the route takes.
fn bad_query(e: QueryRejection, what: &str) -> Problem {
    Problem::bad_input(format!("{what} ({})", e.body_text()))
}

/// The newest signed tree head.
#[utoipa::path(
    get,
    path = "/v1/log/checkpoint",
    tag = "evidence",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The newest signed tree head", body = SignedTreeHeadSchema),
        (status = 404, description = "No tree head signed yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn latest_checkpoint(
    State(session): State<Shared>,
    EvidenceReader(_): EvidenceReader,
) -> Result<Json<SignedTreeHead>, Problem> {
    Ok(Json(call(&session, |s| s.latest_checkpoint()).await?))
}

/// The newest signed tree head as a C2SP signed note (tlog-checkpoint, signed by the log's key, with the witnesses'
/// cosignatures stored for it): what a witness (`consentry witness cosign --url`) reads.
#[utoipa::path(
    get,
    path = "/v1/log/checkpoint/note",
    tag = "evidence",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The newest checkpoint as a signed note", body = CheckpointNote),
        (status = 404, description = "No tree head signed yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn checkpoint_note(
    State(session): State<Shared>,
    EvidenceReader(_): EvidenceReader,
) -> Result<Json<CheckpointNote>, Problem> {
    Ok(Json(call(&session, |s| s.checkpoint_note()).await?))
}

/// Stores a witness's `cosignature/v1` of a checkpoint, after checking it with the witness's verifier key; receipts
/// against that checkpoint carry it from then on.
#[utoipa::path(
    post,
    path = "/v1/log/cosignatures",
    tag = "evidence",
    security(("bearer" = [])),
    request_body = CosignatureSubmission,
    responses(
        (status = 200, description = "Stored; the witnesses that have now cosigned the checkpoint", body = StoredCosignature),
        (status = 400, description = "A malformed body, or a cosignature that does not verify", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No checkpoint of that size", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn add_cosignature(
    State(session): State<Shared>,
    Operator(_): Operator,
    body: Result<Json<CosignatureSubmission>, JsonRejection>,
) -> Result<Json<StoredCosignature>, Problem> {
    let Json(sub) = body.map_err(|e| {
        crate::problem::json_body_problem(
            e,
            r#"a cosignature: send {"tree_size": N, "witness_key": "name+keyid+base64", "cosignature": "— name base64"}"#,
        )
    })?;
    let tree_size = sub.tree_size;
    let cosigned_by = call(&session, move |s| s.add_cosignature(&sub)).await?;
    Ok(Json(StoredCosignature { tree_size, cosigned_by }))
}

/// Every signed tree head, oldest first (what `consentry audit --heads` takes).
#[utoipa::path(
    get,
    path = "/v1/log/checkpoints",
    tag = "evidence",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every signed tree head, oldest first", body = Vec<SignedTreeHeadSchema>),
    )
)]
pub(crate) async fn all_checkpoints(
    State(session): State<Shared>,
    EvidenceReader(_): EvidenceReader,
) -> Result<Json<Vec<SignedTreeHead>>, Problem> {
    Ok(Json(call(&session, |s| s.checkpoints()).await?))
}

/// The tree head signed at exactly `size` entries.
#[utoipa::path(
    get,
    path = "/v1/log/checkpoints/{size}",
    tag = "evidence",
    security(("bearer" = [])),
    params(("size" = u64, Path, description = "The tree size a head was signed at")),
    responses(
        (status = 200, description = "The signed tree head of that size", body = SignedTreeHeadSchema),
        (status = 400, description = "The size is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No head was signed at that size", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn checkpoint_at_size(
    State(session): State<Shared>,
    EvidenceReader(_): EvidenceReader,
    size: Result<Path<u64>, PathRejection>,
) -> Result<Json<SignedTreeHead>, Problem> {
    let Path(size) = size.map_err(|e| bad_path(e, "a checkpoint is named by its tree size, a number"))?;
    Ok(Json(call(&session, move |s| s.checkpoint_at_size(size)).await?))
}

/// The ledger's public key, to check tree heads and receipts with: public, so a member's browser can check their own
/// receipts (an auditor should also get it out of band and compare the log id).
#[utoipa::path(
    get,
    path = "/v1/log/public-key",
    tag = "evidence",
    responses(
        (status = 200, description = "The ledger's Ed25519 public key and log id", body = PublicKeySchema),
    )
)]
pub(crate) async fn public_key(State(session): State<Shared>) -> Result<Json<Value>, Problem> {
    let key = call(&session, |s| s.public_key()).await?;
    Ok(Json(json!({ "public_key": key.to_hex(), "log_id": hex::encode(key.log_id()) })))
}

/// The newest checkpoint as a C2SP signed note, in plain text: with `/tlog/tile/…` the log in C2SP tlog-tiles'
/// layout, from which a witness or auditor recomputes roots and proofs itself (BLAKE3 in place of SHA-256).
#[utoipa::path(
    get,
    path = "/tlog/checkpoint",
    tag = "evidence",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed note (tlog-checkpoint and its signatures)", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 404, description = "No tree head signed yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn tlog_checkpoint(
    State(session): State<Shared>,
    EvidenceReader(_): EvidenceReader,
) -> Result<Response, Problem> {
    let note = call(&session, |s| s.checkpoint_note()).await?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], note.note).into_response())
}

/// A Merkle tile as C2SP tlog-tiles names it: `tile/<L>/<N>` (256 hashes of 32 bytes) or `tile/<L>/<N>.p/<W>`
/// (the first `W`). Entry bundles (`tile/entries/…`) are not served: entries are members' personal data.
#[utoipa::path(
    get,
    path = "/tlog/tile/{path}",
    tag = "evidence",
    security(("bearer" = [])),
    params(("path" = String, Path, description = "<level>/<index in three-digit groups>[.p/<width>], e.g. 0/x001/234 or 1/000.p/17")),
    responses(
        (status = 200, description = "The tile's hashes, concatenated", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 400, description = "Not a tile path", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The log has not grown that far", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn tlog_tile(
    State(session): State<Shared>,
    EvidenceReader(_): EvidenceReader,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(path) = path.map_err(|e| bad_path(e, "a tile path, <level>/<index>[.p/<width>]"))?;
    let bytes = call(&session, move |s| s.tile(&path)).await?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))], bytes).into_response())
}

/// The query of `GET /v1/log/proofs/inclusion`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionQuery {
    /// The entry's position (1-based).
    seq: u64,
    /// The tree size to prove inclusion in [default: the newest signed head's].
    size: Option<u64>,
}

/// Inclusion proof of one entry in a tree a client holds a signed head of.
#[utoipa::path(
    get,
    path = "/v1/log/proofs/inclusion",
    tag = "evidence",
    security(("bearer" = [])),
    params(InclusionQuery),
    responses(
        (status = 200, description = "The entry, its leaf hash, the tree's root and the audit path", body = InclusionProof),
        (status = 400, description = "A malformed query, or seq outside 1..=size", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The log is shorter than size, or no head signed yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn inclusion_proof(
    State(session): State<Shared>,
    EvidenceReader(_): EvidenceReader,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Json<InclusionProof>, Problem> {
    let Query(q) = query.map_err(|e| bad_query(e, "send ?seq=N[&size=M], numbers"))?;
    Ok(Json(call(&session, move |s| s.inclusion_proof(q.seq, q.size)).await?))
}

/// The query of `GET /v1/log/proofs/consistency`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyQuery {
    /// The older tree's size.
    from: u64,
    /// The newer tree's size [default: the newest signed head's].
    to: Option<u64>,
}

/// Consistency proof between two tree sizes: the newer log extends the older one.
#[utoipa::path(
    get,
    path = "/v1/log/proofs/consistency",
    tag = "evidence",
    security(("bearer" = [])),
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "Both roots and the proof", body = ConsistencyProof),
        (status = 400, description = "A malformed query, or from past to", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The log is shorter than to, or no head signed yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn consistency_proof(
    State(session): State<Shared>,
    EvidenceReader(_): EvidenceReader,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ConsistencyProof>, Problem> {
    let Query(q) = query.map_err(|e| bad_query(e, "send ?from=A[&to=B], numbers"))?;
    Ok(Json(call(&session, move |s| s.consistency_proof(q.from, q.to)).await?))
}

/// The receipt of any entry of the log (a member reads only their own, under `/v1/me/receipts`).
#[utoipa::path(
    get,
    path = "/v1/log/receipts/{seq}",
    tag = "evidence",
    security(("bearer" = [])),
    params(("seq" = u64, Path, description = "The entry's position (1-based)")),
    responses(
        (status = 200, description = "A receipt that verifies offline with the public key (`consentry ledger verify-receipt`)", body = Object),
        (status = 400, description = "seq is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn receipt(
    State(session): State<Shared>,
    EvidenceReader(_): EvidenceReader,
    seq: Result<Path<u64>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    let Path(seq) = seq.map_err(|e| bad_path(e, "a receipt is named by its ledger position, a number"))?;
    let receipt = call(&session, move |s| s.receipt(seq)).await?;
    json_value(&receipt).map(Json)
}

/// The evidence bundle `consentry audit export` writes, as a tar archive of one directory: unpacked, that directory
/// is what `consentry audit --offline DIR` checks.
#[utoipa::path(
    get,
    path = "/v1/evidence/bundle",
    tag = "evidence",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The evidence bundle (ustar archive)", content_type = "application/x-tar", body = Vec<u8>),
    )
)]
pub(crate) async fn bundle(
    State(session): State<Shared>,
    EvidenceReader(_): EvidenceReader,
) -> Result<Response, Problem> {
    // Exported first, so a failure is still a problem; then packed and streamed as it is written.
    let bundle = call(&session, |s| s.evidence_bundle()).await?;
    let disposition = format!("attachment; filename=\"{}.tar\"", bundle.name());
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(CHUNK, ChannelWriter(tx.clone()));
        if let Err(e) = bundle.write_tar(&mut out).map_err(std::io::Error::other).and_then(|()| out.flush()) {
            // The client sees the body end in an error rather than a short archive that looks whole.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// A writer that hands what it is given to the response body, chunk by chunk; a client gone is a broken pipe.
struct ChannelWriter(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts the online audit (as `consentry audit` runs it) and answers at once with the run to poll; the run is
/// recorded with when, by whom, the verdict and every finding.
#[utoipa::path(
    post,
    path = "/v1/audits",
    tag = "audits",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The audit started; poll the Location until its status is no longer `running`", body = AuditRecord),
    )
)]
pub(crate) async fn run_audit(State(session): State<Shared>, Operator(by): Operator) -> Result<Response, Problem> {
    let pending = call(&session, move |s| s.begin_audit(&by)).await?;
    let record = pending.record();
    let s = std::sync::Arc::clone(&session);
    // Detached: the outcome (a signed run, or the error as a failed run) is recorded, and read by polling.
    tokio::task::spawn_blocking(move || s.finish_audit(pending));
    let location = format!("/v1/audits/{}", record.id);
    let mut response = (StatusCode::ACCEPTED, Json(record)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// `GET /v1/audits`: the recorded runs.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: `list_audits` renders the body
struct AuditList {
    /// The runs, newest first, without their reports.
    runs: Vec<AuditRecord>,
}

/// Every recorded audit run, newest first.
#[utoipa::path(
    get,
    path = "/v1/audits",
    tag = "audits",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The runs, newest first, without their reports", body = AuditList),
        (status = 422, description = "A run record was altered after it was written", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_audits(State(session): State<Shared>, Operator(_): Operator) -> Result<Json<Value>, Problem> {
    let runs = call(&session, |s| s.audit_runs()).await?;
    Ok(Json(json!({ "runs": runs })))
}

/// One recorded audit run with its full report.
#[utoipa::path(
    get,
    path = "/v1/audits/{id}",
    tag = "audits",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The run's id, as POST /v1/audits returned it")),
    responses(
        (status = 200, description = "The run: running, interrupted, failed with its error, or done with its verdict and report (`run`)", body = AuditRecord),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The run record was altered after it was written", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn show_audit(
    State(session): State<Shared>,
    Operator(_): Operator,
    Path(id): Path<String>,
) -> Result<Json<AuditRecord>, Problem> {
    Ok(Json(call(&session, move |s| s.audit_run(&id)).await?))
}
