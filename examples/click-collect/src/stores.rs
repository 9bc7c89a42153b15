//! The marketplace's stores: each is a tenant of the engine with its own
//! catalog, stock, promotions, carts and orders. Pages live under
//! `/s/{store}`, where `{store}` is the store's slug and, on a served
//! shop, its tenant id.

use commerce_core::{ParseError, TenantId};

use crate::catalog::Department;

/// One store of the marketplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreInfo {
    /// The slug in its pages' paths (`/s/harbour-st`), and the tenant of a
    /// served shop.
    pub slug: &'static str,
    /// The name on its pages.
    pub name: &'static str,
    /// What it sells, in a line.
    pub tagline: &'static str,
    /// Where it is.
    pub address: &'static str,
    /// The ABN on its tax invoices (an example number).
    pub abn: &'static str,
    /// The departments it stocks.
    pub departments: &'static [Department],
}

/// The stores, the first being the marketplace's flagship.
pub const STORES: [StoreInfo; 3] = [
    StoreInfo {
        slug: "harbour-st",
        name: "Harbour St Market",
        tagline: "Groceries, a bottle shop and a hot food counter under one roof.",
        address: "12 Eagle St, Brisbane City QLD 4000",
        abn: "51 824 753 556",
        departments: &[
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
        ],
    },
    StoreInfo {
        slug: "northside-cellars",
        name: "Northside Cellars & Pantry",
        tagline: "Wine, beer and spirits, with a pantry and snacks for the table.",
        address: "88 Lutwyche Rd, Windsor QLD 4030",
        abn: "33 102 417 932",
        departments: &[
            Department::Wine,
            Department::Beer,
            Department::Spirits,
            Department::Snacks,
            Department::Pantry,
            Department::Drinks,
        ],
    },
    StoreInfo {
        slug: "laneway-kitchen",
        name: "Laneway Kitchen & Grocer",
        tagline: "A restaurant counter, fresh produce and bread, and cold beer.",
        address: "3 Fish Ln, South Brisbane QLD 4101",
        abn: "64 598 201 147",
        departments: &[
            Department::Meals,
            Department::Fresh,
            Department::Bakery,
            Department::Dairy,
            Department::Drinks,
            Department::Snacks,
            Department::Beer,
        ],
    },
];

/// A store, with the tenant it runs as in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// The store.
    pub info: StoreInfo,
    /// Its tenant.
    pub tenant: TenantId,
}

/// The stores of a run, each with its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stores {
    stores: Vec<Store>,
}

impl Stores {
    /// Every store, each as the tenant named by its slug followed by
    /// `suffix` (`""` for a served shop, whose data outlives the run; a
    /// scripted run's `-1a2b3c4d`, so runs never meet on PostgreSQL).
    pub fn with_suffix(suffix: &str) -> Result<Self, ParseError> {
        let stores = STORES
            .iter()
            .map(|info| {
                Ok(Store {
                    info: *info,
                    tenant: TenantId::parse(format!("{}{suffix}", info.slug))?,
                })
            })
            .collect::<Result<_, ParseError>>()?;
        Ok(Self { stores })
    }

    /// The store whose slug is `slug`.
    pub fn get(&self, slug: &str) -> Option<&Store> {
        self.stores.iter().find(|store| store.info.slug == slug)
    }

    /// Every store, in the order of [`STORES`].
    pub fn all(&self) -> &[Store] {
        &self.stores
    }

    /// Every store's tenant.
    pub fn tenants(&self) -> Vec<TenantId> {
        self.stores.iter().map(|s| s.tenant.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_have_distinct_slugs_and_departments() -> Result<(), ParseError> {
        let stores = Stores::with_suffix("")?;
        assert_eq!(stores.all().len(), STORES.len());
        for store in stores.all() {
            assert_eq!(store.tenant.as_str(), store.info.slug);
            assert!(!store.info.departments.is_empty());
        }
        assert!(stores.get("harbour-st").is_some());
        assert!(stores.get("nowhere").is_none());
        let per_run = Stores::with_suffix("-1a2b3c4d")?;
        assert_eq!(
            per_run.get("laneway-kitchen").map(|s| s.tenant.as_str()),
            Some("laneway-kitchen-1a2b3c4d")
        );
        let catalogs: Vec<_> = STORES.iter().map(|s| s.departments).collect();
        assert!(
            catalogs.windows(2).all(|w| w.first() != w.last()),
            "each store has its own range"
        );
        Ok(())
    }
}
