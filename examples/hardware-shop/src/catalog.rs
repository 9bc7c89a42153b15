//! The shop's catalog: five used parts the demo and the browser tests count
//! on, and more generated from a seed, one unit of each.

/// One item on the shelf.
pub struct Item {
    pub sku: &'static str,
    pub name: &'static str,
    pub category: &'static str,
    pub price: &'static str,
    pub note: &'static str,
}

pub const SHELF: [Item; 5] = [
    Item {
        sku: "GPU-3090-FE",
        name: "RTX 3090 Founders Edition (used)",
        category: "gpu",
        price: "1150.00",
        note: "bought from a retiring miner",
    },
    Item {
        sku: "GPU-6800XT",
        name: "Radeon RX 6800 XT (used)",
        category: "gpu",
        price: "549.00",
        note: "trade-in, repasted",
    },
    Item {
        sku: "GPU-A770-16G",
        name: "Arc A770 16GB (used)",
        category: "gpu",
        price: "329.00",
        note: "ex-display unit",
    },
    Item {
        sku: "CPU-5950X",
        name: "Ryzen 9 5950X (used)",
        category: "cpu",
        price: "429.00",
        note: "pulled from a workstation",
    },
    Item {
        sku: "CPU-12900K",
        name: "Core i9-12900K (used)",
        category: "cpu",
        price: "389.00",
        note: "trade-in",
    },
];

/// One part of the catalog, fixed or generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The SKU.
    pub sku: String,
    /// The product's name.
    pub name: String,
    /// `gpu` or `cpu`.
    pub category: &'static str,
    /// The price in cents (AUD).
    pub cents: i64,
    /// The condition note.
    pub note: String,
}

const GPUS: [(&str, &str, i64); 8] = [
    ("RTX-3080", "RTX 3080 10GB", 52_000),
    ("RTX-3070", "RTX 3070 8GB", 36_000),
    ("RTX-2080TI", "RTX 2080 Ti 11GB", 34_000),
    ("RX-6700XT", "Radeon RX 6700 XT", 31_000),
    ("RX-5700XT", "Radeon RX 5700 XT", 19_000),
    ("GTX-1080TI", "GTX 1080 Ti 11GB", 21_000),
    ("RTX-3060", "RTX 3060 12GB", 24_000),
    ("RX-6600", "Radeon RX 6600", 17_000),
];

const CPUS: [(&str, &str, i64); 6] = [
    ("R7-5800X", "Ryzen 7 5800X", 23_000),
    ("R5-5600X", "Ryzen 5 5600X", 14_000),
    ("I7-12700K", "Core i7-12700K", 27_000),
    ("I5-12600K", "Core i5-12600K", 19_000),
    ("R9-3900X", "Ryzen 9 3900X", 21_000),
    ("I9-9900K", "Core i9-9900K", 22_000),
];

const NOTES: [&str; 6] = [
    "trade-in, tested for 24 hours",
    "ex-display unit",
    "repasted, new thermal pads",
    "from a retired render node",
    "boxed, light wear",
    "no box, fully working",
];

/// splitmix64: a small, well-mixed generator, so a seed always makes the
/// same catalog.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> Option<T> {
        let len = u64::try_from(from.len()).ok()?;
        let at = usize::try_from(self.next() % len.max(1)).ok()?;
        from.get(at).copied()
    }
}

/// The catalog of `seed`: the five fixed parts, then two units' worth of
/// each model above as separate one-of-a-kind listings, their condition and
/// price (within 15% of the model's) chosen by `seed`.
pub fn parts(seed: u64) -> Vec<Part> {
    let mut mix = Mix(seed);
    let mut parts: Vec<Part> = SHELF
        .iter()
        .map(|item| Part {
            sku: item.sku.to_owned(),
            name: item.name.to_owned(),
            category: item.category,
            cents: cents(item.price),
            note: item.note.to_owned(),
        })
        .collect();
    let models = GPUS
        .iter()
        .map(|m| (m, "gpu"))
        .chain(CPUS.iter().map(|m| (m, "cpu")));
    for ((code, name, cents), category) in models {
        for unit in 1..=2 {
            let swing = i64::try_from(mix.next() % 31).unwrap_or(15) - 15;
            let price = cents + cents * swing / 100;
            // Whole dollars less a cent, as a shop prices used parts.
            let price = (price / 100) * 100 - 1;
            parts.push(Part {
                sku: format!("{code}-U{unit}"),
                name: format!("{name} (used)"),
                category,
                cents: price,
                note: mix.pick(&NOTES).unwrap_or("used").to_owned(),
            });
        }
    }
    parts
}

/// `"1150.00"` in cents; the fixed prices are written by hand.
fn cents(price: &str) -> i64 {
    let (whole, fraction) = price.split_once('.').unwrap_or((price, "0"));
    whole.parse::<i64>().unwrap_or(0) * 100 + fraction.parse::<i64>().unwrap_or(0)
}

/// A product id that is the same for a SKU on every run, so seeding twice
/// updates the listing instead of adding a second one.
pub fn product_id(sku: &str) -> commerce_core::ProductId {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("hardware-shop:{sku}").as_bytes());
    let mut bytes = [0u8; 16];
    for (to, from) in bytes.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    commerce_core::ProductId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// Lists every part of `seed`'s catalog and receives its one unit (once:
/// the receipt's reference is the SKU's, so seeding again receives
/// nothing). Returns how many parts it listed.
pub async fn seed(shop: &commerce_core::Shop, seed: u64) -> Result<usize, commerce_core::Error> {
    use commerce_core::{
        Category, Currency, IdempotencyKey, Money, NewProduct, Quantity, Sku, TaxCategory, Variant,
    };
    let catalog = parts(seed);
    for part in &catalog {
        let sku = Sku::parse(&part.sku)?;
        shop.put_product(
            product_id(&part.sku),
            NewProduct {
                name: part.name.clone(),
                category: Category::parse(part.category)?,
                tax_category: TaxCategory::parse("standard")?,
                age_restricted: false,
                variants: vec![Variant::new(
                    sku.clone(),
                    Money::new(part.cents, Currency::AUD),
                )],
                published: true,
            },
        )
        .await?;
        let reference = IdempotencyKey::parse(format!("seed-{}", part.sku))?;
        shop.receive_stock_once(&sku, Quantity::ONE, &reference, Some(part.note.clone()))
            .await?;
    }
    Ok(catalog.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_makes_the_same_catalog() {
        assert_eq!(parts(7), parts(7));
        assert_ne!(parts(7), parts(8));
        let catalog = parts(2026);
        assert_eq!(catalog.len(), 5 + 2 * (GPUS.len() + CPUS.len()));
        let mut skus: Vec<&str> = catalog.iter().map(|p| p.sku.as_str()).collect();
        skus.sort_unstable();
        skus.dedup();
        assert_eq!(skus.len(), catalog.len(), "SKUs are unique");
        assert_eq!(catalog.first().map(|p| p.cents), Some(115_000));
        assert!(
            catalog
                .iter()
                .all(|p| p.cents > 0 && p.cents % 100 == 99 || p.cents % 100 == 0)
        );
    }
}
