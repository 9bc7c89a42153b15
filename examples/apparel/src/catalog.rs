//! The shop's catalog: five garments, each in sizes × colours, stock per
//! variant. Some combinations are sold out on purpose (the demo and the
//! browser tests count on them); how many units the others have is chosen
//! by the seed.
//!
//! The shop's rules are data too: US sales tax (prices exclude it) and the
//! "3 for 2" promotion, written by [`configure`].

use commerce_core::promotion::{Action, DiscountOrder, Selector};
use commerce_core::tax::PriceBasis;
use commerce_core::{
    Category, Currency, Error, IdempotencyKey, Money, NewProduct, ProductId, PromotionId,
    PromotionSpec, Quantity, Shop, ShopSettings, Sku, TaxCategory, TaxConfig, Variant,
};
use rust_decimal::Decimal;

/// One garment: its code (the SKU's prefix), name, category, price in
/// cents (USD, before sales tax), sizes and colours.
pub struct Garment {
    /// The SKU prefix, as in `TEE-M-BLACK`.
    pub code: &'static str,
    /// The product's name.
    pub name: &'static str,
    /// The category promotions select on.
    pub category: &'static str,
    /// The price of every variant, in cents.
    pub cents: i64,
    /// The sizes, in the order the picker shows them.
    pub sizes: &'static [&'static str],
    /// The colours, in the order the picker shows them.
    pub colours: &'static [&'static str],
}

/// The shelf.
pub const GARMENTS: [Garment; 5] = [
    Garment {
        code: "TEE",
        name: "Classic Tee",
        category: "tops",
        cents: 2_400,
        sizes: &["S", "M", "L", "XL"],
        colours: &["Black", "White", "Heather Grey"],
    },
    Garment {
        code: "HOODIE",
        name: "Pullover Hoodie",
        category: "tops",
        cents: 5_800,
        sizes: &["S", "M", "L", "XL"],
        colours: &["Black", "Navy"],
    },
    Garment {
        code: "JEANS",
        name: "Slim Jeans",
        category: "bottoms",
        cents: 7_900,
        sizes: &["28", "30", "32", "34"],
        colours: &["Indigo", "Black"],
    },
    Garment {
        code: "BEANIE",
        name: "Wool Beanie",
        category: "accessories",
        cents: 1_800,
        sizes: &["One size"],
        colours: &["Black", "Mustard", "Forest"],
    },
    Garment {
        code: "JACKET",
        name: "Chore Jacket",
        category: "outerwear",
        cents: 12_900,
        sizes: &["S", "M", "L"],
        colours: &["Olive", "Ecru"],
    },
];

/// The combinations that are sold out whatever the seed:
/// `(code, size, colour)`. The hoodie is sold out in XL in every colour
/// and the jacket in Ecru in every size, so the picker disables a whole
/// size and a whole colour; the others are single combinations.
pub const SOLD_OUT: [(&str, &str, &str); 9] = [
    ("TEE", "L", "White"),
    ("TEE", "XL", "Heather Grey"),
    ("HOODIE", "S", "Navy"),
    ("HOODIE", "XL", "Black"),
    ("HOODIE", "XL", "Navy"),
    ("JEANS", "34", "Black"),
    ("JACKET", "S", "Ecru"),
    ("JACKET", "M", "Ecru"),
    ("JACKET", "L", "Ecru"),
];

/// The sales tax the shop charges: Washington State, Seattle's combined
/// rate, 10.25%, added on top of the shelf prices.
pub const TAX_STATE: &str = "WA";

/// The sales tax rate in percent.
pub fn tax_percent() -> Decimal {
    Decimal::new(1025, 2)
}

/// The id of the "3 for 2" promotion.
pub const THREE_FOR_TWO: &str = "3-for-2";

/// One variant of the catalog of a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stocked {
    /// The SKU, `CODE-SIZE-COLOUR`.
    pub sku: String,
    /// The size.
    pub size: &'static str,
    /// The colour.
    pub colour: &'static str,
    /// Units received when seeding.
    pub units: u32,
}

/// `TEE-M-HEATHER-GREY`.
pub fn sku(code: &str, size: &str, colour: &str) -> String {
    format!("{code}-{size}-{colour}")
        .to_ascii_uppercase()
        .replace(' ', "-")
}

/// splitmix64: a small, well-mixed generator, so a seed always makes the
/// same stock.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The variants of `garment` and their stock for `seed`: 0 for the
/// [`SOLD_OUT`] combinations, 2 to 12 units for the others.
pub fn variants(garment: &Garment, seed: u64) -> Vec<Stocked> {
    let mut mix = Mix(seed ^ u64::from_le_bytes(*b"apparel\0"));
    let mut out = Vec::new();
    for size in garment.sizes {
        for colour in garment.colours {
            let random = u32::try_from(mix.next() % 11).unwrap_or(0) + 2;
            let sold_out = SOLD_OUT.contains(&(garment.code, *size, *colour));
            out.push(Stocked {
                sku: sku(garment.code, size, colour),
                size,
                colour,
                units: if sold_out { 0 } else { random },
            });
        }
    }
    out
}

/// A product id that is the same for a garment on every run, so seeding
/// twice updates the product instead of adding a second one.
pub fn product_id(code: &str) -> ProductId {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("apparel:{code}").as_bytes());
    let mut bytes = [0u8; 16];
    for (to, from) in bytes.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    ProductId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// `garment` as the engine's product, every variant at the garment's
/// price.
pub fn product(garment: &Garment, seed: u64) -> Result<NewProduct, Error> {
    product_at(garment, seed, Money::new(garment.cents, Currency::USD))
}

/// `garment` with every variant at `price`.
pub fn product_at(garment: &Garment, seed: u64, price: Money) -> Result<NewProduct, Error> {
    let variants = variants(garment, seed)
        .into_iter()
        .map(|v| {
            Ok(Variant::new(Sku::parse(&v.sku)?, price)
                .with_option("size", v.size)
                .with_option("colour", v.colour))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(NewProduct {
        name: garment.name.to_owned(),
        category: Category::parse(garment.category)?,
        tax_category: TaxCategory::parse("standard")?,
        age_restricted: false,
        variants,
        published: true,
    })
}

/// Lists every garment of `seed`'s catalog and receives each variant's
/// stock (once: the receipt's reference is the SKU's, so seeding again
/// receives nothing). Returns how many variants it listed.
pub async fn seed(shop: &Shop, seed: u64) -> Result<usize, Error> {
    let mut listed = 0_usize;
    for garment in &GARMENTS {
        shop.put_product(product_id(garment.code), product(garment, seed)?)
            .await?;
        for variant in variants(garment, seed) {
            listed = listed.saturating_add(1);
            if variant.units == 0 {
                continue;
            }
            let reference = IdempotencyKey::parse(format!("seed-{}", variant.sku))?;
            shop.receive_stock_once(
                &Sku::parse(&variant.sku)?,
                Quantity::new(variant.units)?,
                &reference,
                Some("opening stock".to_owned()),
            )
            .await?;
        }
    }
    Ok(listed)
}

/// The US sales tax rules of the shop.
pub fn sales_tax() -> TaxConfig {
    TaxConfig::us_sales_tax(TAX_STATE, tax_percent())
}

/// The "3 for 2" promotion: in every three units bought, the cheapest is
/// free (buy two, get one at 100% off, cheapest first, repeated for every
/// complete group of three).
pub fn three_for_two() -> Result<PromotionSpec, Error> {
    Ok(PromotionSpec {
        id: PromotionId::parse(THREE_FOR_TWO)?,
        name: "3 for 2: the cheapest of every three items is free".to_owned(),
        priority: 0,
        exclusive: false,
        group: None,
        conditions: Vec::new(),
        action: Action::BuyXGetY {
            buy: Selector::All,
            buy_quantity: 2,
            get: Selector::All,
            get_quantity: 1,
            percent: Decimal::ONE_HUNDRED,
            repeat: true,
            order: DiscountOrder::CheapestFirst,
        },
        cap: None,
        max_units_per_line: None,
        usage_limit: None,
        per_customer_limit: None,
    })
}

/// Writes the shop's rules when they are not written yet: US sales tax
/// (when the settings still have no tax) and the "3 for 2" promotion
/// (when there is none by its id). What the owner changed on the admin
/// pages is left alone. Returns whether it wrote anything.
pub async fn configure(shop: &Shop) -> Result<bool, Error> {
    let mut wrote = false;
    let settings = shop.settings().await?;
    if settings.tax.region == TaxConfig::untaxed().region {
        shop.put_settings(ShopSettings {
            tax: sales_tax(),
            ..settings
        })
        .await?;
        wrote = true;
    }
    let promotion = three_for_two()?;
    let exists = shop
        .promotions()
        .await?
        .iter()
        .any(|p| p.id() == &promotion.id);
    if !exists {
        shop.put_promotion(promotion).await?;
        wrote = true;
    }
    Ok(wrote)
}

/// Whether `tax` adds tax on top of prices (US sales tax) rather than
/// including it (GST, VAT).
pub fn tax_is_added(tax: &TaxConfig) -> bool {
    tax.prices == PriceBasis::TaxExclusive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_makes_the_same_stock_and_the_sold_out_stay_sold_out() {
        for garment in &GARMENTS {
            assert_eq!(variants(garment, 7), variants(garment, 7));
            let stocked = variants(garment, 2026);
            assert_eq!(stocked.len(), garment.sizes.len() * garment.colours.len());
            for v in &stocked {
                let sold_out = SOLD_OUT.contains(&(garment.code, v.size, v.colour));
                assert_eq!(v.units == 0, sold_out, "{}", v.sku);
                assert!(v.units <= 12);
            }
        }
    }

    #[test]
    fn skus_are_unique_and_valid() {
        let mut skus: Vec<String> = GARMENTS
            .iter()
            .flat_map(|g| variants(g, 1))
            .map(|v| v.sku)
            .collect();
        assert!(skus.iter().all(|s| Sku::parse(s).is_ok()), "{skus:?}");
        assert_eq!(sku("TEE", "M", "Heather Grey"), "TEE-M-HEATHER-GREY");
        let count = skus.len();
        skus.sort_unstable();
        skus.dedup();
        assert_eq!(skus.len(), count);
    }

    #[test]
    fn every_garment_is_a_valid_product_and_the_rules_are_valid() {
        for garment in &GARMENTS {
            let product = product(garment, 1).map_err(|e| e.to_string());
            assert!(
                product.is_ok_and(|p| commerce_core::Product::new(product_id(garment.code), p)
                    .is_ok()),
                "{}",
                garment.code
            );
        }
        assert!(sales_tax().validate().is_ok());
        assert!(tax_is_added(&sales_tax()));
        assert!(!tax_is_added(&TaxConfig::australia_gst()));
        let promotion = three_for_two().map_err(|e| e.to_string());
        assert!(promotion.is_ok_and(|p| commerce_core::Promotion::new(p).is_ok()));
    }
}
