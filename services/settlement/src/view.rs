//! The settlement service's own read model, fed by the log: the organizations (for the VAT
//! regime and the invoices' parties), the deals matching agreed or cancelled, one ledger per
//! currency with its version, the escrow of each deal, and the invoices issued. Rebuilt from the
//! first event at every start; never written to by commands.

use std::collections::{BTreeSet, HashMap};

use symbiose_domain::Currency;
use symbiose_eventstore::RecordedEvent;
use symbiose_listings_contract::organization::Organization;
use symbiose_matching_contract::deal::Deal;
use symbiose_shell::aggregate_id;
use uuid::Uuid;

use crate::codec::{self, EscrowEvent, StoredInvoice};
use crate::ledger::{self, Ledger};

pub(crate) const LEDGER_CATEGORY: &str = "ledger";
pub(crate) const ESCROW_CATEGORY: &str = "escrow";
pub(crate) const INVOICES_CATEGORY: &str = "invoices";
const ORGANIZATION_CATEGORY: &str = "organization";
const DEAL_CATEGORY: &str = "deal";

/// The escrow of a deal as the view follows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Escrow {
    Held {
        fee_rate_bp: u32,
        regime: crate::vat::Regime,
        pending_id: Uuid,
    },
    Refused {
        reason: String,
    },
    /// Paid out for `accepted_milli`, under the fee and the regime it was held with.
    Released {
        accepted_milli: i64,
        fee_rate_bp: u32,
        regime: crate::vat::Regime,
    },
    Cancelled,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct View {
    organizations: HashMap<Uuid, Organization>,
    deals: HashMap<Uuid, Deal>,
    ledgers: HashMap<Currency, (Ledger, u64)>,
    escrows: HashMap<Uuid, Escrow>,
    /// (payer, position of the refusal, deal) for each deal whose payment waits for funds:
    /// a payer's oldest first.
    waiting: BTreeSet<(Uuid, u64, Uuid)>,
    /// Where each waiting deal stands in `waiting`.
    waiting_at: HashMap<Uuid, (Uuid, u64)>,
    deal_transfers: HashMap<Uuid, Vec<(Currency, Uuid)>>,
    invoices: HashMap<Uuid, StoredInvoice>,
    /// (organization, issue position, invoice) for the issuer and the customer of each.
    invoices_by_party: BTreeSet<(Uuid, u64, Uuid)>,
}

impl symbiose_shell::Snapshot for View {
    const NAME: &'static str = "settlement.view";

    fn encode(&self) -> Result<Vec<u8>, String> {
        symbiose_shell::snapshot::encode(self)
    }

    fn restored(&self, bytes: &[u8]) -> Result<View, String> {
        symbiose_shell::snapshot::decode(bytes)
    }
}

impl symbiose_shell::View for View {
    /// Applies one stored event; events of other streams are skipped. An event that does not
    /// decode is logged and skipped, so one cannot stop the view.
    fn apply(&mut self, recorded: &RecordedEvent) {
        let outcome = match recorded.stream.category() {
            ORGANIZATION_CATEGORY => {
                symbiose_listings_contract::fold_public_recorded(&mut self.organizations, recorded)
            }
            DEAL_CATEGORY => symbiose_matching_contract::fold_recorded_deal(&mut self.deals, recorded),
            LEDGER_CATEGORY => self.apply_ledger(recorded),
            ESCROW_CATEGORY => self.apply_escrow(recorded),
            INVOICES_CATEGORY => self.apply_invoice(recorded),
            _ => Ok(()),
        };
        if let Err(error) = outcome {
            tracing::error!(position = %recorded.position, stream = %recorded.stream, %error, "settlement view: skipping an event");
        }
    }
}

impl View {
    fn apply_ledger(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let name = recorded.stream.as_str();
        let code = name.strip_prefix("ledger-").ok_or_else(|| format!("{name}: not a ledger stream"))?;
        let currency: Currency = code.parse().map_err(|_| format!("{name}: not a currency's ledger"))?;
        let event = codec::decode_recorded_ledger_event(recorded)?;
        if let ledger::Event::Transferred { transfer, .. } | ledger::Event::PendingCreated { transfer, .. } =
            &event
            && let Some(deal) = transfer.deal_id
        {
            self.deal_transfers.entry(deal).or_default().push((currency, transfer.id));
        }
        let (state, _) = self.ledgers.remove(&currency).unwrap_or_else(|| (Ledger::new(currency), 0));
        self.ledgers.insert(currency, (ledger::evolve(state, &event), recorded.version));
        Ok(())
    }

    fn apply_escrow(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let deal = aggregate_id(recorded)?;
        let escrow = match codec::decode_recorded_escrow_event(recorded)? {
            EscrowEvent::Held { fee_rate_bp, regime, pending_id, .. } => {
                Escrow::Held { fee_rate_bp, regime, pending_id }
            }
            EscrowEvent::Refused { reason } => Escrow::Refused { reason },
            EscrowEvent::Released { accepted_milli } => match self.escrows.get(&deal) {
                Some(Escrow::Held { fee_rate_bp, regime, .. }) => {
                    Escrow::Released { accepted_milli, fee_rate_bp: *fee_rate_bp, regime: *regime }
                }
                _ => return Err(format!("escrow of {deal}: released without being held")),
            },
            EscrowEvent::Cancelled => Escrow::Cancelled,
        };
        if let Some((payer, position)) = self.waiting_at.remove(&deal) {
            self.waiting.remove(&(payer, position, deal));
        }
        if matches!(escrow, Escrow::Refused { .. })
            && let Some(held) = self.deals.get(&deal)
        {
            // The payer is the buyer; for a gate fee (a negative price), the seller.
            let payer = if held.price_per_unit.is_negative() { held.seller } else { held.buyer };
            self.waiting.insert((payer, recorded.position.as_u64(), deal));
            self.waiting_at.insert(deal, (payer, recorded.position.as_u64()));
        }
        self.escrows.insert(deal, escrow);
        Ok(())
    }

    fn apply_invoice(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let stored = codec::decode_recorded_invoice(recorded)?;
        let invoice_id = stored.invoice.invoice_id;
        self.invoices_by_party.insert((stored.issuer, recorded.position.as_u64(), invoice_id));
        self.invoices_by_party.insert((
            stored.invoice.customer.organization,
            recorded.position.as_u64(),
            invoice_id,
        ));
        self.invoices.insert(invoice_id, stored);
        Ok(())
    }

    pub fn organization(&self, id: Uuid) -> Option<&Organization> {
        self.organizations.get(&id)
    }

    pub fn deal(&self, id: Uuid) -> Option<&Deal> {
        self.deals.get(&id)
    }

    /// The ledger of `currency` (`None`: no event yet) and the version of its stream.
    pub fn ledger(&self, currency: Currency) -> (Option<&Ledger>, Option<u64>) {
        match self.ledgers.get(&currency) {
            Some((ledger, version)) => (Some(ledger), Some(*version)),
            None => (None, None),
        }
    }

    pub fn escrow(&self, deal: Uuid) -> Option<&Escrow> {
        self.escrows.get(&deal)
    }

    /// The deals whose payment `payer` owes and that wait for funds, in the order their
    /// payment was first refused, at most `limit`.
    pub fn waiting_for_funds(&self, payer: Uuid, limit: usize) -> Vec<Deal> {
        self.waiting
            .range((payer, 0, Uuid::nil())..=(payer, u64::MAX, Uuid::max()))
            .filter_map(|(_, _, deal)| self.deals.get(deal))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The transfers of `deal`, in the order they were made.
    pub fn deal_transfers(&self, deal: Uuid) -> &[(Currency, Uuid)] {
        self.deal_transfers.get(&deal).map_or(&[], Vec::as_slice)
    }

    pub fn invoice(&self, id: Uuid) -> Option<&StoredInvoice> {
        self.invoices.get(&id)
    }

    /// The invoices `organization` issued or received, newest first, after the key `after` (the
    /// last of the previous page); at most `limit`, and whether more follow.
    pub fn invoices_of(
        &self,
        organization: Uuid,
        after: Option<(u64, Uuid)>,
        limit: usize,
    ) -> (Vec<(u64, &StoredInvoice)>, bool) {
        let upper = after
            .map_or((organization, u64::MAX, Uuid::max()), |(position, id)| (organization, position, id));
        let mut found = self
            .invoices_by_party
            .range((organization, 0, Uuid::nil())..upper)
            .rev()
            .filter_map(|(_, position, id)| self.invoices.get(id).map(|stored| (*position, stored)));
        let page: Vec<(u64, &StoredInvoice)> = found.by_ref().take(limit).collect();
        let more = found.next().is_some();
        (page, more)
    }
}
