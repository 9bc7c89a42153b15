//! The catalog: products, their variants and one SKU per variant.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{Category, ProductId, Sku, TaxCategory};
use crate::money::Money;
use crate::text::{TextField, check_text};

/// One sellable variant of a product: a SKU, its option values and its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Variant {
    sku: Sku,
    options: BTreeMap<String, String>,
    price: Money,
}

impl Variant {
    /// A variant with no option values (a product sold in one form).
    pub fn new(sku: Sku, price: Money) -> Self {
        Self {
            sku,
            options: BTreeMap::new(),
            price,
        }
    }

    /// Adds an option value, such as `("size", "M")` or `("colour", "navy")`.
    pub fn with_option(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(name.into(), value.into());
        self
    }

    /// The SKU.
    pub fn sku(&self) -> &Sku {
        &self.sku
    }

    /// The option values by option name.
    pub fn options(&self) -> &BTreeMap<String, String> {
        &self.options
    }

    /// The unit price.
    pub fn price(&self) -> Money {
        self.price
    }
}

/// What a merchant supplies to create or replace a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewProduct {
    /// The display name.
    pub name: String,
    /// The category promotions select on.
    pub category: Category,
    /// The tax category tax rules map to a rate.
    pub tax_category: TaxCategory,
    /// Whether buying it needs a recorded age verification (alcohol).
    pub age_restricted: bool,
    /// The variants, each with its own SKU. At least one.
    pub variants: Vec<Variant>,
    /// Whether the storefront shows it and carts may add it (default:
    /// `true`, also when absent from JSON). See [`NewProduct::unpublished`].
    #[serde(default = "published_by_default")]
    pub published: bool,
}

impl NewProduct {
    /// The same product, created (or replaced) unpublished: the admin sees
    /// it, the storefront's reads, lists and search do not, and no cart can
    /// add a line for its SKUs until it is published
    /// ([`Shop::set_product_published`](crate::Shop::set_product_published)).
    pub fn unpublished(mut self) -> Self {
        self.published = false;
        self
    }
}

fn published_by_default() -> bool {
    true
}

/// A product with its variants. Built only through [`Product::new`], which
/// checks it; deserializing checks it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "ProductDoc")]
pub struct Product {
    id: ProductId,
    name: String,
    category: Category,
    tax_category: TaxCategory,
    age_restricted: bool,
    variants: Vec<Variant>,
    published: bool,
}

impl Product {
    /// Checks `new` and makes it a product with identifier `id`.
    ///
    /// Refused with [`Error::InvalidProduct`] when the name is blank, there is
    /// no variant, two variants share a SKU or the same option values, the
    /// variants are priced in more than one currency, or a price is negative;
    /// and with [`Error::InvalidText`] when the name, an option name or an
    /// option value is text not every store can keep (see
    /// [`check_text`]).
    pub fn new(id: ProductId, new: NewProduct) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidProduct(reason);
        let name = new.name.trim();
        check_text(TextField::ProductName, name)?;
        if name.is_empty() {
            return Err(invalid("the name must not be blank".into()));
        }
        let Some(first) = new.variants.first() else {
            return Err(invalid("a product needs at least one variant".into()));
        };
        let currency = first.price.currency();
        let mut skus = BTreeSet::new();
        let mut option_sets = BTreeSet::new();
        for variant in &new.variants {
            for (option, value) in &variant.options {
                check_text(TextField::OptionName, option)?;
                check_text(TextField::OptionValue, value)?;
            }
            if !skus.insert(&variant.sku) {
                return Err(invalid(format!("sku {} appears twice", variant.sku)));
            }
            if !option_sets.insert(&variant.options) {
                return Err(invalid(format!(
                    "variant {} repeats another variant's option values",
                    variant.sku
                )));
            }
            if variant.price.currency() != currency {
                return Err(invalid(
                    "all variants must be priced in one currency".into(),
                ));
            }
            if variant.price.is_negative() {
                return Err(invalid(format!(
                    "variant {} has a negative price",
                    variant.sku
                )));
            }
        }
        Ok(Self {
            id,
            name: name.to_owned(),
            category: new.category,
            tax_category: new.tax_category,
            age_restricted: new.age_restricted,
            variants: new.variants,
            published: new.published,
        })
    }

    /// The identifier.
    pub fn id(&self) -> ProductId {
        self.id
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The category promotions select on.
    pub fn category(&self) -> &Category {
        &self.category
    }

    /// The tax category.
    pub fn tax_category(&self) -> &TaxCategory {
        &self.tax_category
    }

    /// Whether buying it needs a recorded age verification.
    pub fn age_restricted(&self) -> bool {
        self.age_restricted
    }

    /// The variants.
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// The variant with `sku`, if this product has it.
    pub fn variant(&self, sku: &Sku) -> Option<&Variant> {
        self.variants.iter().find(|v| &v.sku == sku)
    }

    /// Whether the storefront shows it and carts may add its SKUs.
    pub fn is_published(&self) -> bool {
        self.published
    }

    /// Publishes or unpublishes it (a value change; stores make it with
    /// [`CatalogStore::set_published`](crate::store::CatalogStore::set_published)).
    pub fn set_published(&mut self, published: bool) {
        self.published = published;
    }
}

/// A product as serialized: checked by [`Product::new`] when deserialized.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct ProductDoc {
    id: ProductId,
    name: String,
    category: Category,
    tax_category: TaxCategory,
    age_restricted: bool,
    variants: Vec<Variant>,
    // Products stored before publishing existed are published.
    #[serde(default = "published_by_default")]
    published: bool,
}

impl TryFrom<ProductDoc> for Product {
    type Error = Error;

    fn try_from(doc: ProductDoc) -> Result<Self> {
        Product::new(
            doc.id,
            NewProduct {
                name: doc.name,
                category: doc.category,
                tax_category: doc.tax_category,
                age_restricted: doc.age_restricted,
                variants: doc.variants,
                published: doc.published,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn draft(variants: Vec<Variant>) -> NewProduct {
        NewProduct {
            name: "Tee".into(),
            category: Category::parse("apparel").unwrap(),
            tax_category: TaxCategory::parse("standard").unwrap(),
            age_restricted: false,
            variants,
            published: true,
        }
    }

    fn v(sku: &str, minor: i64, currency: Currency) -> Variant {
        Variant::new(Sku::parse(sku).unwrap(), Money::new(minor, currency))
    }

    #[test]
    fn validation() {
        let ok = draft(vec![
            v("TEE-S", 2500, Currency::AUD).with_option("size", "S"),
            v("TEE-M", 2500, Currency::AUD).with_option("size", "M"),
        ]);
        let product = Product::new(ProductId::new(), ok).unwrap();
        assert_eq!(product.variants().len(), 2);
        assert!(product.variant(&Sku::parse("TEE-M").unwrap()).is_some());

        let cases = [
            draft(vec![]),
            draft(vec![
                v("A", 1, Currency::AUD),
                v("A", 1, Currency::AUD).with_option("size", "M"),
            ]),
            draft(vec![v("A", 1, Currency::AUD), v("B", 1, Currency::AUD)]),
            draft(vec![
                v("A", 1, Currency::AUD).with_option("s", "1"),
                v("B", 1, Currency::USD),
            ]),
            draft(vec![v("A", -1, Currency::AUD)]),
            NewProduct {
                name: "  ".into(),
                ..draft(vec![v("A", 1, Currency::AUD)])
            },
        ];
        for case in cases {
            assert!(matches!(
                Product::new(ProductId::new(), case),
                Err(Error::InvalidProduct(_))
            ));
        }
    }

    #[test]
    fn text_not_every_store_can_keep_is_refused() {
        use crate::text::{TextField, TextReason};
        let one = || vec![v("A", 1, Currency::AUD)];
        let word = "x".repeat(3_000);
        let cases = [
            (
                NewProduct {
                    name: "Tee\0".into(),
                    ..draft(one())
                },
                TextField::ProductName,
                TextReason::NulByte { offset: 3 },
            ),
            (
                NewProduct {
                    name: format!("Tee {word}"),
                    ..draft(one())
                },
                TextField::ProductName,
                TextReason::WordTooLong {
                    length: 3_000,
                    max: 2_047,
                },
            ),
            (
                draft(vec![v("A", 1, Currency::AUD).with_option("si\0ze", "M")]),
                TextField::OptionName,
                TextReason::NulByte { offset: 2 },
            ),
            (
                draft(vec![v("A", 1, Currency::AUD).with_option("size", "\0")]),
                TextField::OptionValue,
                TextReason::NulByte { offset: 0 },
            ),
        ];
        for (case, field, reason) in cases {
            match Product::new(ProductId::new(), case) {
                Err(Error::InvalidText {
                    field: f,
                    reason: r,
                }) => {
                    assert_eq!((f, r), (field, reason));
                }
                other => panic!("expected InvalidText for {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn deserializing_checks_again() {
        let product = Product::new(
            ProductId::new(),
            draft(vec![v("A", 1, Currency::AUD).with_option("size", "M")]),
        )
        .unwrap();
        let doc = serde_json::to_value(&product).unwrap();
        let back: Product = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(back, product);
        let mut hostile = doc;
        hostile["name"] = serde_json::Value::from("Tee\0");
        assert!(serde_json::from_value::<Product>(hostile.clone()).is_err());
        hostile["name"] = serde_json::Value::from("   ");
        assert!(serde_json::from_value::<Product>(hostile).is_err());
    }

    #[test]
    fn products_stored_before_publishing_existed_are_published() {
        let product = Product::new(
            ProductId::new(),
            draft(vec![v("A", 1, Currency::AUD)]).unpublished(),
        )
        .unwrap();
        assert!(!product.is_published());
        let mut doc = serde_json::to_value(&product).unwrap();
        let back: Product = serde_json::from_value(doc.clone()).unwrap();
        assert!(!back.is_published());
        doc.as_object_mut().unwrap().remove("published");
        let old: Product = serde_json::from_value(doc).unwrap();
        assert!(old.is_published());
        let mut new = serde_json::to_value(draft(vec![v("A", 1, Currency::AUD)])).unwrap();
        new.as_object_mut().unwrap().remove("published");
        assert!(serde_json::from_value::<NewProduct>(new).unwrap().published);
    }

    #[test]
    fn a_page_knows_whether_more_follow() {
        let products: Vec<Product> = (0..3)
            .map(|_| Product::new(ProductId::new(), draft(vec![v("A", 1, Currency::AUD)])))
            .collect::<Result<_>>()
            .unwrap();
        let full = ProductPage::from_probe(&ProductQuery::all(2), products.clone());
        assert_eq!(full.products.len(), 2);
        assert_eq!(full.next, Some(products[1].id()));
        let last = ProductPage::from_probe(&ProductQuery::all(3), products.clone());
        assert_eq!((last.products.len(), last.next), (3, None));
        assert_eq!(ProductQuery::published(0).page_size(), 1);
        assert_eq!(ProductQuery::published(10_000).page_size(), Page::MAX_LIMIT);
    }
}

/// A page of results: skip `offset`, return at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page {
    /// How many results to skip.
    pub offset: u32,
    /// How many results to return at most (1 to [`Page::MAX_LIMIT`]).
    pub limit: u32,
}

impl Page {
    /// The largest page.
    pub const MAX_LIMIT: u32 = 200;

    /// The first page of `limit` results (clamped to 1..=[`Page::MAX_LIMIT`]).
    pub fn first(limit: u32) -> Self {
        Self {
            offset: 0,
            limit: limit.clamp(1, Self::MAX_LIMIT),
        }
    }

    /// The page after this one.
    pub fn next(self) -> Self {
        Self {
            offset: self.offset.saturating_add(self.limit),
            limit: self.limit,
        }
    }
}

/// Which products a catalog page holds: in ascending [`ProductId`] order
/// (keyset pagination), after `after`, at most `limit` of them.
///
/// ```
/// use commerce_core::catalog::ProductQuery;
/// let storefront = ProductQuery::published(20);
/// assert!(!storefront.include_unpublished);
/// let admin = ProductQuery::all(500);
/// assert_eq!(admin.page_size(), 200, "clamped to Page::MAX_LIMIT");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductQuery {
    /// Whether unpublished products are included (the admin's list) or
    /// not (the storefront's).
    pub include_unpublished: bool,
    /// Start after this product: the previous page's
    /// [`ProductPage::next`]; `None` starts at the beginning. The product
    /// need not exist any more.
    pub after: Option<ProductId>,
    /// How many products at most (clamped to 1..=[`Page::MAX_LIMIT`]; see
    /// [`page_size`](Self::page_size)).
    pub limit: u32,
}

impl ProductQuery {
    /// The first page of published products (the storefront's list).
    pub fn published(limit: u32) -> Self {
        Self {
            include_unpublished: false,
            after: None,
            limit,
        }
    }

    /// The first page of every product, unpublished ones included (the
    /// admin's list).
    pub fn all(limit: u32) -> Self {
        Self {
            include_unpublished: true,
            after: None,
            limit,
        }
    }

    /// The same query starting after `cursor` (the previous page's
    /// [`ProductPage::next`]).
    pub fn after(self, cursor: Option<ProductId>) -> Self {
        Self {
            after: cursor,
            ..self
        }
    }

    /// The page size every store uses: `limit` clamped to
    /// 1..=[`Page::MAX_LIMIT`].
    pub fn page_size(&self) -> u32 {
        self.limit.clamp(1, Page::MAX_LIMIT)
    }

    /// Whether `product` belongs in this query's pages (ignoring the cursor).
    pub fn admits(&self, product: &Product) -> bool {
        self.include_unpublished || product.is_published()
    }
}

/// A page of products in ascending id order, and where the next starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductPage {
    /// The products, in ascending id order.
    pub products: Vec<Product>,
    /// The cursor of the next page (the id of this page's last product)
    /// when more products follow; `None` on the last page.
    pub next: Option<ProductId>,
}

impl ProductPage {
    /// The page of `query` from `probe`: the products the query admits
    /// after its cursor, in ascending id order, read up to one more than
    /// [`page_size`](ProductQuery::page_size) so the page knows whether
    /// more follow. For store authors.
    pub fn from_probe(query: &ProductQuery, mut probe: Vec<Product>) -> Self {
        let size = usize::try_from(query.page_size()).unwrap_or(usize::MAX);
        let more = probe.len() > size;
        probe.truncate(size);
        let next = if more {
            probe.last().map(Product::id)
        } else {
            None
        };
        Self {
            products: probe,
            next,
        }
    }
}

/// The words of a search query: runs of ASCII letters and digits,
/// lower-cased; everything else separates words. At most 8 words of at
/// most 32 characters are kept. Stores match each word as a prefix of a
/// word of the product's name, category or SKUs, and require all of them.
pub fn search_terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            word.chars()
                .take(32)
                .collect::<String>()
                .to_ascii_lowercase()
        })
        .take(8)
        .collect()
}

/// The words of `product` that search matches against: its name, category
/// and SKUs, split like [`search_terms`].
pub fn searchable_words(product: &Product) -> Vec<String> {
    let mut text = format!("{} {}", product.name(), product.category());
    for variant in product.variants() {
        text.push(' ');
        text.push_str(variant.sku().as_str());
    }
    search_words(&text).map(str::to_ascii_lowercase).collect()
}

/// The words of `text` as search sees them, before lower-casing: runs of
/// ASCII letters and digits. [`check_text`] bounds their length in
/// searchable fields.
pub(crate) fn search_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
}
