//! Settlement's contract cases: a close moves every pending credit before its watermark into
//! one batch (one leaf per wallet, zero sums left out) and nothing else; closing the same
//! watermark again returns the same batch, an earlier one is refused, an empty one changes
//! nothing; closes racing each other or racing new credits lose no credit and batch none
//! twice; the batch file rebuilds to the stored root and verifies; a payment is recorded once,
//! with one transaction hash per batch; the rewards views add up by state with proofs that
//! verify.

use std::sync::Arc;

use alloy_primitives::{B256, U256};
use futures::FutureExt as _;

use crate::domain::{
    Amount, ReceiptHash, ReceiptId, SubmissionId, TaskId, WalletAddress, WorkerId, leaf_hash,
    verify_batch_file, verify_proof,
};

/// The batch file of batch `id`, built as `settle export` builds it: from the stored leaves.
async fn export(store: &dyn Store, id: u64) -> crate::domain::BatchFile {
    let b = store.batch(id).await.unwrap().unwrap();
    let leaves = store.batch_leaves(id, None, 1_000_000).await.unwrap();
    let payouts: Vec<_> = leaves
        .iter()
        .map(|l| (l.wallet, U256::from(l.amount.atomic())))
        .collect();
    let file = crate::domain::build_batch_file(&settlement::header(&b).unwrap(), &payouts).unwrap();
    assert_eq!(
        file.root, b.root,
        "the stored leaves rebuild the stored root"
    );
    file
}
use crate::orchestrator::settlement::config::SettlementConfig;
use crate::orchestrator::settlement::{self, SettleError};
use crate::orchestrator::store::settlement::{BATCHED, PAID, PENDING, RewardScope};
use crate::orchestrator::store::{MarketTx, Store};
use crate::wire::Credit;

pub(super) const A: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
pub(super) const B: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const C: &str = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB";

pub(super) fn config() -> SettlementConfig {
    let raw = toml::from_str(
        "token = \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\"\nchain_id = 8453\n\
         verifying_contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"",
    )
    .unwrap();
    SettlementConfig::resolve(&raw).unwrap().unwrap()
}

/// Writes a credit of `net` to `wallet` for `worker`, made at `created_ms`.
pub(super) async fn credit(
    store: &dyn Store,
    worker: &str,
    wallet: &str,
    net: u128,
    created_ms: u64,
) -> SubmissionId {
    let id = SubmissionId::generate();
    let c = Credit {
        submission_id: Some(id.clone()),
        task_id: Some(TaskId::generate()),
        job_id: None,
        worker_id: WorkerId::parse(worker).unwrap(),
        wallet: WalletAddress::parse(wallet).unwrap(),
        gross: Amount::from_atomic(net),
        fee: Amount::ZERO,
        net: Amount::from_atomic(net),
        asset: "USDC".into(),
        asset_decimals: None,
        unpaid: None,
        status: String::new(),
        created_at: created_ms / 1000,
        receipt_id: ReceiptId::generate(),
        receipt_hash: ReceiptHash::from_bytes([7; 32]),
        batch_id: None,
    };
    store
        .transact(Box::new(move |tx: &mut dyn MarketTx| {
            async move { tx.insert_credit(&c, created_ms).await }.boxed()
        }))
        .await
        .unwrap();
    id
}

async fn status_of(store: &dyn Store, worker: &str) -> Vec<(String, Option<u64>)> {
    let mut out: Vec<_> = store
        .credits(WorkerId::parse(worker).unwrap(), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.status, c.batch_id))
        .collect();
    out.sort();
    out
}

async fn close(store: &dyn Store, until_ms: u64) -> Result<settlement::ClosedBatch, SettleError> {
    settlement::close(store, Some(&config()), "USDC", until_ms, until_ms + 1).await
}

/// Batch 1 (of the case above) paid: bad hashes and unknown batches change nothing; the
/// payment is recorded once; a second batch cannot reuse its hash.
async fn payment_is_recorded_once(s: &dyn Store) {
    let tx = format!("0x{}", "ab".repeat(32));
    for bad in [
        "0x12",
        "ab".repeat(32).as_str(),
        &format!("0x{}", "zz".repeat(32)),
    ] {
        assert!(matches!(
            settlement::mark_paid(s, 1, bad, 10_000).await,
            Err(SettleError::BadTxHash)
        ));
    }
    assert!(matches!(
        settlement::mark_paid(s, 2, &tx, 10_000).await,
        Err(SettleError::NotFound(2))
    ));
    let paid = settlement::mark_paid(s, 1, &tx.to_uppercase().replace("0X", "0x"), 10_000)
        .await
        .unwrap();
    assert_eq!(
        (paid.tx_hash.as_deref(), paid.paid_ms),
        (Some(tx.as_str()), Some(10_000))
    );
    assert!(matches!(
        settlement::mark_paid(s, 1, &format!("0x{}", "cd".repeat(32)), 11_000).await,
        Err(SettleError::AlreadyPaid { batch_id: 1, .. })
    ));
    assert_eq!(s.batch(1).await.unwrap().unwrap(), paid);
    assert_eq!(
        status_of(s, "w-a").await,
        vec![(PAID.into(), Some(1)), (PENDING.into(), None)]
    );
    // A second batch cannot reuse the first's payment.
    let second = close(s, 10_000).await.unwrap();
    assert_eq!((second.batch.batch_id, second.batch.credits), (2, 1));
    assert!(matches!(
        settlement::mark_paid(s, 2, &tx, 12_000).await,
        Err(SettleError::TxHashUsed { batch_id: 1, .. })
    ));
    assert_eq!(s.batch(2).await.unwrap().unwrap().tx_hash, None);
    let listed = s.batches(None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|b| b.batch_id).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(s.batches(Some(2), 10).await.unwrap()[0].batch_id, 1);
}

pub async fn a_close_batches_each_pending_credit_once_and_is_idempotent(store: Arc<dyn Store>) {
    let s = &*store;
    credit(s, "w-a", A, 100, 1_000).await;
    credit(s, "w-a2", A, 200, 2_000).await;
    credit(s, "w-b", B, 300, 3_000).await;
    credit(s, "w-c", C, 0, 1_500).await;
    credit(s, "w-a", A, 50, 9_000).await;
    // Without [settlement], nothing closes.
    let e = settlement::close(s, None, "USDC", 5_000, 5_001).await;
    assert!(matches!(e, Err(SettleError::NotConfigured)), "{e:?}");

    let first = close(s, 5_000).await.unwrap();
    assert!(first.created);
    let b = &first.batch;
    assert_eq!(
        (b.batch_id, b.credits, b.leaves, b.total, b.period_start_ms),
        (1, 4, 2, Amount::from_atomic(600), 1_000)
    );
    assert_eq!(
        status_of(s, "w-a").await,
        vec![(BATCHED.into(), Some(1)), (PENDING.into(), None)]
    );
    assert_eq!(status_of(s, "w-c").await, vec![(BATCHED.into(), Some(1))]);
    // Again at the same watermark: the same batch, nothing moved.
    let again = close(s, 5_000).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.batch, first.batch);
    // The same watermark for another asset (the configured one changed): refused.
    let other = settlement::close(s, Some(&config()), "DAI", 5_000, 5_001).await;
    assert!(
        matches!(other, Err(SettleError::OtherAsset { batch_id: 1, .. })),
        "{other:?}"
    );
    // Earlier: refused. Later but with nothing payable before it: nothing changes.
    assert!(matches!(
        close(s, 4_000).await,
        Err(SettleError::Behind { batch_id: 1, .. })
    ));
    assert!(matches!(close(s, 8_000).await, Err(SettleError::Nothing)));
    assert_eq!(s.batches(None, 10).await.unwrap().len(), 1);

    // The batch file rebuilds to the stored root and verifies offline; leaves page.
    let file = export(s, 1).await;
    let summary = verify_batch_file(&file).unwrap();
    assert_eq!(summary.root.to_string(), b.root);
    assert_eq!(summary.total, U256::from(600));
    assert_eq!(file.leaves.len(), 2);
    let first = s.batch_leaves(1, None, 1).await.unwrap();
    let rest = s
        .batch_leaves(1, Some(first[0].position), 10)
        .await
        .unwrap();
    assert_eq!((first.len(), rest.len(), rest[0].position), (1, 1, 1));
    assert!(s.batch_leaves(9, None, 10).await.unwrap().is_empty());

    // The worker's view: by state, and its wallet's leaf with a proof that verifies.
    let totals = settlement::totals(s, RewardScope::Worker(WorkerId::parse("w-a").unwrap()))
        .await
        .unwrap();
    assert_eq!(
        (totals.accrued, totals.pending, totals.batched, totals.paid),
        (
            Amount::from_atomic(150),
            Amount::from_atomic(50),
            Amount::from_atomic(100),
            Amount::ZERO
        )
    );
    let shown = settlement::reward_batches(s, &totals, 10).await.unwrap();
    assert_eq!(shown.len(), 1);
    let leaf = &shown[0];
    assert_eq!(
        (leaf.share, leaf.leaf.amount.as_str()),
        (Amount::from_atomic(100), "300")
    );
    let proof: Vec<B256> = leaf.leaf.proof.iter().map(|p| p.parse().unwrap()).collect();
    let root: B256 = leaf.root.parse().unwrap();
    let a = WalletAddress::parse(A).unwrap();
    assert!(verify_proof(
        &root,
        &leaf_hash(a.address(), U256::from(300)),
        &proof
    ));
    let wallet = settlement::totals(s, RewardScope::Wallet(a)).await.unwrap();
    assert_eq!(
        (wallet.accrued, wallet.batched, wallet.credits),
        (Amount::from_atomic(350), Amount::from_atomic(300), 3)
    );
    // C's credits sum to 0: it has no leaf, and its view shows no batch.
    let c = settlement::totals(s, RewardScope::Wallet(WalletAddress::parse(C).unwrap()))
        .await
        .unwrap();
    assert!(
        settlement::reward_batches(s, &c, 10)
            .await
            .unwrap()
            .is_empty()
    );

    payment_is_recorded_once(s).await;
}

/// Eight closes at one watermark make one batch; closes at rising watermarks racing 200 new
/// credits put every credit in exactly one batch, and the batches' totals add up to them.
pub async fn racing_closes_and_credits_batch_every_credit_once(store: Arc<dyn Store>) {
    for k in 0..50u64 {
        credit(
            &*store,
            "w-a",
            if k % 2 == 0 { A } else { B },
            10,
            1_000 + k,
        )
        .await;
    }
    let closes: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { close(&*store, 2_000).await })
        })
        .collect();
    let mut created = 0;
    for c in closes {
        let c = c.await.unwrap().unwrap();
        created += usize::from(c.created);
        assert_eq!((c.batch.batch_id, c.batch.credits), (1, 50));
    }
    assert_eq!(created, 1);

    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for k in 0..200u64 {
                credit(&*store, "w-b", if k % 3 == 0 { A } else { C }, 7, 3_000 + k).await;
            }
        })
    };
    let mut until = 3_000;
    while !writer.is_finished() {
        until += 20;
        let _ = close(&*store, until).await;
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    let _ = close(&*store, 1_000_000).await;
    let states = status_of(&*store, "w-b").await;
    assert_eq!(states.len(), 200);
    assert!(
        states.iter().all(|(s, b)| s == BATCHED && b.is_some()),
        "{states:?}"
    );
    let batches = store.batches(None, 1000).await.unwrap();
    let credits: u64 = batches.iter().map(|b| b.credits).sum();
    let total: u128 = batches.iter().map(|b| b.total.atomic()).sum();
    assert_eq!((credits, total), (250, 50 * 10 + 200 * 7));
}
