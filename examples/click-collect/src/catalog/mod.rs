//! The marketplace's catalog: a few hundred products across groceries
//! (fresh food GST-free), liquor (age restricted), snacks and a restaurant
//! counter, generated from a seed. The same seed always makes the same
//! catalog and the same stock; seeding twice changes nothing the second
//! time (products are replaced by the same values, stock receipts carry a
//! reference that counts once).

mod data;

use commerce_core::tax::TaxConfig;
use commerce_core::{
    Category, Currency, Error, IdempotencyKey, Money, NewProduct, ProductId, Quantity, Shop,
    ShopSettings, Sku, TaxCategory, Variant,
};

pub use data::SHELF;

use crate::rules;
use crate::stores::StoreInfo;

/// A department: the product's category, which promotions select on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Department {
    /// Fruit, vegetables, meat and fish: GST-free.
    Fresh,
    /// Bread (GST-free) and pastries (taxable).
    Bakery,
    /// Milk, cheese and eggs (GST-free), ice cream (taxable).
    Dairy,
    /// Dry goods, mostly GST-free.
    Pantry,
    /// Soft drinks (taxable), water and juice (GST-free).
    Drinks,
    /// Chips, chocolate and biscuits: taxable.
    Snacks,
    /// Wine: age restricted.
    Wine,
    /// Beer: age restricted.
    Beer,
    /// Spirits: age restricted.
    Spirits,
    /// The restaurant counter's meals: taxable.
    Meals,
    /// Cleaning and kitchen supplies: taxable.
    Household,
}

impl Department {
    /// Every department, in the order the store pages list them.
    pub const ALL: [Department; 11] = [
        Department::Fresh,
        Department::Bakery,
        Department::Dairy,
        Department::Pantry,
        Department::Drinks,
        Department::Snacks,
        Department::Wine,
        Department::Beer,
        Department::Spirits,
        Department::Meals,
        Department::Household,
    ];

    /// The engine's category (what promotions select on, and a search
    /// word).
    pub fn category(self) -> &'static str {
        match self {
            Department::Fresh => "fresh",
            Department::Bakery => "bakery",
            Department::Dairy => "dairy",
            Department::Pantry => "pantry",
            Department::Drinks => "drinks",
            Department::Snacks => "snacks",
            Department::Wine => "wine",
            Department::Beer => "beer",
            Department::Spirits => "spirits",
            Department::Meals => "meals",
            Department::Household => "household",
        }
    }

    /// The department's name on the store page.
    pub fn label(self) -> &'static str {
        match self {
            Department::Fresh => "Fresh produce, meat and fish",
            Department::Bakery => "Bakery",
            Department::Dairy => "Dairy and eggs",
            Department::Pantry => "Pantry",
            Department::Drinks => "Drinks",
            Department::Snacks => "Snacks",
            Department::Wine => "Wine",
            Department::Beer => "Beer",
            Department::Spirits => "Spirits",
            Department::Meals => "Restaurant counter",
            Department::Household => "Household",
        }
    }

    /// The department whose category is `category`.
    pub fn from_category(category: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.category() == category)
    }

    /// Liquor: sold only with an age verification on the cart.
    pub fn age_restricted(self) -> bool {
        matches!(
            self,
            Department::Wine | Department::Beer | Department::Spirits
        )
    }
}

/// The tax category of GST-free goods in [`TaxConfig::australia_gst`].
pub const GST_FREE: &str = "gst-free";
/// The tax category of goods taxed at 10% GST.
pub const STANDARD: &str = "standard";

/// One product of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The SKU (one variant per product).
    pub sku: String,
    /// The name.
    pub name: String,
    /// The department.
    pub department: Department,
    /// The GST-inclusive price in cents.
    pub cents: i64,
    /// GST-free (basic food) rather than taxed at 10%.
    pub gst_free: bool,
}

impl Item {
    fn staple(department: Department, (sku, name, cents, gst_free): data::Staple) -> Self {
        Self {
            sku: sku.to_owned(),
            name: name.to_owned(),
            department,
            cents,
            gst_free,
        }
    }

    /// The tax category.
    pub fn tax_category(&self) -> &'static str {
        if self.gst_free { GST_FREE } else { STANDARD }
    }
}

/// splitmix64: a small, well-mixed generator, so a seed always makes the
/// same catalog.
pub struct Mix(u64);

impl Mix {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next().checked_rem(n).unwrap_or(0)
    }

    /// `true` with `percent` percent chance.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `from`.
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> Option<T> {
        let len = u64::try_from(from.len()).ok()?;
        let at = usize::try_from(self.below(len)).ok()?;
        from.get(at).copied()
    }
}

/// `cents` moved by up to `percent` percent either way, as `mix` says,
/// then priced as a shop would: whole dollars less a cent.
fn swing(mix: &mut Mix, cents: i64, percent: u64) -> i64 {
    let span = percent.saturating_mul(2).saturating_add(1);
    let moved = i64::try_from(mix.below(span)).unwrap_or(0) - i64::try_from(percent).unwrap_or(0);
    let price = cents + cents * moved / 100;
    ((price / 100) * 100 - 1).max(99)
}

/// The catalog of `seed`: the shelf, the staples, and the wines, beers,
/// spirits, snacks and counter meals the seed picks and prices. SKUs are
/// unique.
pub fn items(seed: u64) -> Vec<Item> {
    let mut mix = Mix::new(seed);
    let mut items: Vec<Item> = SHELF
        .iter()
        .map(|(department, staple)| Item::staple(*department, *staple))
        .collect();
    let staples = [
        (Department::Fresh, &data::FRESH[..]),
        (Department::Bakery, &data::BAKERY[..]),
        (Department::Dairy, &data::DAIRY[..]),
        (Department::Pantry, &data::PANTRY[..]),
        (Department::Drinks, &data::DRINKS[..]),
        (Department::Household, &data::HOUSEHOLD[..]),
    ];
    for (department, list) in staples {
        items.extend(list.iter().map(|staple| Item::staple(department, *staple)));
    }
    // An organic line of some fresh food, 40% dearer.
    for (code, name, cents, _) in data::FRESH {
        if mix.chance(40) {
            items.push(Item {
                sku: format!("{code}-ORGANIC"),
                name: format!("Organic {}", lower_first(name)),
                department: Department::Fresh,
                cents: (cents * 14 / 100) * 10,
                gst_free: true,
            });
        }
    }
    for (code, dish, cents) in data::DISHES {
        items.push(Item {
            sku: format!("MEAL-{code}"),
            name: format!("{dish} (counter)"),
            department: Department::Meals,
            cents,
            gst_free: false,
        });
        items.push(Item {
            sku: format!("MEAL-{code}-LARGE"),
            name: format!("{dish}, large (counter)"),
            department: Department::Meals,
            cents: cents * 14 / 10,
            gst_free: false,
        });
    }
    for (varietal, varietal_name, base) in data::VARIETALS {
        for (region, region_name, premium) in data::REGIONS {
            if !mix.chance(55) {
                continue;
            }
            let winery = mix.pick(&data::WINERIES).unwrap_or("Estate");
            let vintage = 2018 + mix.below(6);
            items.push(Item {
                sku: format!("WINE-{varietal}-{region}"),
                name: format!("{winery} {region_name} {varietal_name} {vintage}, 750 mL"),
                department: Department::Wine,
                cents: swing(&mut mix, base + base * premium / 100, 15),
                gst_free: false,
            });
        }
    }
    for (style, style_name, base) in data::STYLES {
        for (brewery, brewery_name) in data::BREWERIES {
            if mix.chance(45) {
                items.push(Item {
                    sku: format!("BEER-{brewery}-{style}"),
                    name: format!("{brewery_name} {style_name}, 375 mL can"),
                    department: Department::Beer,
                    cents: base + 10 * i64::try_from(mix.below(8)).unwrap_or(0),
                    gst_free: false,
                });
            }
        }
    }
    for (spirit, spirit_name, base) in data::SPIRITS {
        for (distiller, distiller_name) in data::DISTILLERS {
            if mix.chance(50) {
                items.push(Item {
                    sku: format!("SPIRIT-{distiller}-{spirit}"),
                    name: format!("{distiller_name} {spirit_name}, 700 mL"),
                    department: Department::Spirits,
                    cents: swing(&mut mix, base, 20),
                    gst_free: false,
                });
            }
        }
    }
    for (kind, kind_name, base) in data::SNACK_KINDS {
        for (brand, brand_name) in data::SNACK_BRANDS {
            if mix.chance(60) {
                items.push(Item {
                    sku: format!("SNACK-{brand}-{kind}"),
                    name: format!("{brand_name} {}", lower_first(kind_name)),
                    department: Department::Snacks,
                    cents: base + 10 * i64::try_from(mix.below(10)).unwrap_or(0) - 50,
                    gst_free: false,
                });
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    items.retain(|item| seen.insert(item.sku.clone()));
    items
}

/// `Bananas` → `bananas`, leaving names that start with a proper noun
/// (`Pink Lady`, `Hass`) as they are.
fn lower_first(name: &str) -> String {
    const PROPER: [&str; 8] = [
        "Pink",
        "Hass",
        "Kensington",
        "Lebanese",
        "Tuscan",
        "Packham",
        "Navel",
        "Atlantic",
    ];
    if PROPER
        .iter()
        .any(|word| name.split(' ').next() == Some(word))
    {
        return name.to_owned();
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The items `store` sells, from `seed`'s catalog.
pub fn store_items(store: &StoreInfo, seed: u64) -> Vec<Item> {
    items(seed)
        .into_iter()
        .filter(|item| store.departments.contains(&item.department))
        .collect()
}

/// How many units of `item` `store` receives: 200 of each shelf item (the
/// scenario and the browser tests count on them); otherwise 5 to 120 as
/// the seed says, and now and then none at all (sold out).
pub fn stock(store: &StoreInfo, item: &Item, seed: u64) -> u32 {
    if SHELF.iter().any(|(_, (sku, ..))| *sku == item.sku) {
        return 200;
    }
    let mut mix = Mix::new(seed ^ fingerprint(&format!("{}:{}", store.slug, item.sku)));
    if mix.chance(3) {
        return 0;
    }
    5 + u32::try_from(mix.below(116)).unwrap_or(0)
}

/// The first eight bytes of SHA-256 of `text`, as a number.
fn fingerprint(text: &str) -> u64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    for (to, from) in bytes.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    u64::from_be_bytes(bytes)
}

/// A product id that is the same for a SKU of a store on every run, so
/// seeding twice replaces the product instead of adding a second one.
pub fn product_id(store: &StoreInfo, sku: &str) -> ProductId {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("click-collect:{}:{sku}", store.slug).as_bytes());
    let mut bytes = [0u8; 16];
    for (to, from) in bytes.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    ProductId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// What seeding a store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seeded {
    /// Products listed (created or replaced).
    pub products: usize,
    /// Units of stock received by this run (0 when run again).
    pub units_received: u64,
}

/// Seeds `store` (as `shop`) with `seed`'s catalog: GST settings (prices
/// include 10% GST, fresh food GST-free) unless the store has settings
/// already (its owner's, from the admin pages), the three promotions, every
/// product of its departments, and their stock (received once per SKU:
/// the receipt's reference is the SKU's, so seeding again receives
/// nothing).
pub async fn seed(shop: &Shop, store: &StoreInfo, seed: u64) -> Result<Seeded, Error> {
    if shop.scope().settings().settings().await?.is_none() {
        shop.put_settings(ShopSettings::with_tax(TaxConfig::australia_gst()))
            .await?;
    }
    for spec in rules::specs()? {
        shop.put_promotion(spec).await?;
    }
    let mut seeded = Seeded::default();
    for item in store_items(store, seed) {
        let sku = Sku::parse(&item.sku)?;
        shop.put_product(
            product_id(store, &item.sku),
            NewProduct {
                name: item.name.clone(),
                category: Category::parse(item.department.category())?,
                tax_category: TaxCategory::parse(item.tax_category())?,
                age_restricted: item.department.age_restricted(),
                variants: vec![Variant::new(
                    sku.clone(),
                    Money::new(item.cents, Currency::AUD),
                )],
                published: true,
            },
        )
        .await?;
        seeded.products += 1;
        let units = stock(store, &item, seed);
        if units == 0 {
            continue;
        }
        let reference = IdempotencyKey::parse(format!("seed-{}", item.sku))?;
        let before = shop.stock(&sku).await?.on_hand;
        let after = shop
            .receive_stock_once(
                &sku,
                Quantity::new(units)?,
                &reference,
                Some("opening stock".into()),
            )
            .await?
            .on_hand;
        seeded.units_received += u64::from(after.saturating_sub(before));
    }
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::STORES;

    #[test]
    fn a_seed_always_makes_the_same_catalog() {
        assert_eq!(items(7), items(7));
        assert_ne!(items(7), items(8));
    }

    #[test]
    fn the_catalog_is_hundreds_of_products_with_unique_skus() {
        for seed in [1, 2026, u64::MAX] {
            let catalog = items(seed);
            assert!(
                catalog.len() >= 250,
                "seed {seed}: {} products",
                catalog.len()
            );
            let mut skus: Vec<&str> = catalog.iter().map(|i| i.sku.as_str()).collect();
            skus.sort_unstable();
            skus.dedup();
            assert_eq!(skus.len(), catalog.len(), "seed {seed}: SKUs are unique");
            for item in &catalog {
                assert!(Sku::parse(&item.sku).is_ok(), "{}", item.sku);
                assert!(item.cents > 0, "{} has a price", item.sku);
                assert!(
                    item.name.is_ascii(),
                    "{}: search works on ASCII words",
                    item.name
                );
            }
            for department in Department::ALL {
                let count = catalog
                    .iter()
                    .filter(|i| i.department == department)
                    .count();
                assert!(count >= 8, "seed {seed}: {count} in {department:?}");
            }
        }
    }

    #[test]
    fn tax_follows_the_department() {
        let catalog = items(2026);
        let free = |d: Department| {
            catalog
                .iter()
                .filter(|i| i.department == d)
                .all(|i| i.gst_free)
        };
        let taxed = |d: Department| {
            catalog
                .iter()
                .filter(|i| i.department == d)
                .all(|i| !i.gst_free)
        };
        assert!(free(Department::Fresh), "fresh food is GST-free");
        for department in [
            Department::Wine,
            Department::Beer,
            Department::Spirits,
            Department::Snacks,
            Department::Meals,
            Department::Household,
        ] {
            assert!(taxed(department), "{department:?} is taxed");
        }
        assert!(
            catalog
                .iter()
                .any(|i| i.department == Department::Bakery && i.gst_free)
        );
        assert!(
            catalog
                .iter()
                .any(|i| i.department == Department::Bakery && !i.gst_free)
        );
        let restricted: Vec<_> = Department::ALL
            .into_iter()
            .filter(|d| d.age_restricted())
            .collect();
        assert_eq!(
            restricted,
            [Department::Wine, Department::Beer, Department::Spirits]
        );
    }

    #[test]
    fn the_shelf_is_in_every_catalog_at_its_price() {
        for seed in [0, 5, 2026] {
            let catalog = items(seed);
            for (department, (sku, name, cents, gst_free)) in SHELF {
                let item = catalog.iter().find(|i| i.sku == sku);
                assert_eq!(
                    item,
                    Some(&Item {
                        sku: sku.to_owned(),
                        name: name.to_owned(),
                        department,
                        cents,
                        gst_free
                    })
                );
            }
        }
    }

    #[test]
    fn stores_differ_and_stock_is_deterministic() {
        let [harbour, northside, laneway] = STORES;
        let counts: Vec<usize> = STORES.iter().map(|s| store_items(s, 2026).len()).collect();
        assert!(counts.iter().all(|c| *c >= 100), "{counts:?}");
        assert!(
            store_items(&northside, 2026)
                .iter()
                .all(|i| i.department != Department::Fresh)
        );
        assert!(
            store_items(&laneway, 2026)
                .iter()
                .all(|i| i.department != Department::Wine)
        );
        let harbour_items = store_items(&harbour, 2026);
        let bananas = harbour_items.iter().find(|i| i.sku == "FRESH-BANANAS");
        assert_eq!(
            bananas.map(|i| stock(&harbour, i, 2026)),
            Some(200),
            "the shelf is stocked deep"
        );
        let others: Vec<u32> = harbour_items
            .iter()
            .map(|i| stock(&harbour, i, 2026))
            .collect();
        assert!(others.iter().all(|u| *u <= 200));
        assert!(others.contains(&0), "some products are sold out");
        assert_eq!(
            others,
            store_items(&harbour, 2026)
                .iter()
                .map(|i| stock(&harbour, i, 2026))
                .collect::<Vec<_>>()
        );
        assert_ne!(product_id(&harbour, "X"), product_id(&laneway, "X"));
        assert_eq!(product_id(&harbour, "X"), product_id(&harbour, "X"));
    }

    #[test]
    fn names_read_naturally() {
        assert_eq!(lower_first("Bananas, 1 kg"), "bananas, 1 kg");
        assert_eq!(
            lower_first("Pink Lady apples, 1 kg"),
            "Pink Lady apples, 1 kg"
        );
        assert_eq!(lower_first(""), "");
    }
}
