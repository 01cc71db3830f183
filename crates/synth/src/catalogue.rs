//! What the shop sells and how it ships: the catalogue, baskets, and carriers.

use crate::random::weighted;

/// Orders of at least this many kuruş ship free.
const FREE_SHIPPING_FROM: u32 = 75_000;
/// What shipping costs below that, in kuruş.
const SHIPPING: u32 = 7_990;

/// The catalogue: SKU, title, price in kuruş, how often it is picked.
pub(crate) const CATALOGUE: &[(&str, &str, u32, u32)] = &[
    ("BEAN-ETH-250", "Ethiopia Yirgacheffe, 250 g", 52_000, 14),
    ("BEAN-COL-250", "Colombia Huila, 250 g", 48_000, 14),
    ("BEAN-KEN-250", "Kenya Nyeri AA, 250 g", 59_000, 8),
    ("BEAN-BRA-1K", "Brazil Cerrado, 1 kg", 145_000, 6),
    ("BEAN-HOUSE-500", "House Espresso Blend, 500 g", 76_000, 12),
    ("BEAN-DECAF-250", "Decaf Colombia, 250 g", 49_500, 4),
    ("KHV-TURK-250", "Türk Kahvesi, 250 g", 26_000, 10),
    ("MUG-CER-300", "Ceramic Mug, 300 ml", 35_000, 5),
    ("MUG-ENAMEL", "Enamel Camp Mug", 29_000, 3),
    ("DRP-V60-02", "V60 Dripper 02", 89_000, 3),
    ("FLT-V60-100", "V60 Paper Filters, 100 pcs", 18_000, 8),
    ("FLT-CHEMEX-100", "Chemex Filters, 100 pcs", 42_000, 3),
    ("GRN-HAND-1", "Hand Grinder", 285_000, 2),
    ("GRN-ELEC-1", "Electric Burr Grinder", 690_000, 1),
];

/// Carrier name and the slug in its tracking address.
pub(crate) const CARRIERS: &[(&str, &str)] = &[
    ("Yurtiçi Kargo", "yurtici"),
    ("Aras Kargo", "aras"),
    ("MNG Kargo", "mng"),
    ("DHL", "dhl"),
    ("UPS", "ups"),
];

/// One line of a basket: a catalogue index and a quantity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    pub(crate) sku: u8,
    pub(crate) quantity: u32,
}

/// Fills `items` with one to three different products; returns the first product (the one a
/// review is about) and the total in kuruş, shipping included.
pub(crate) fn basket(rng: &mut fastrand::Rng, items: &mut Vec<Item>) -> (u8, u32) {
    items.clear();
    let lines = [1, 1, 1, 1, 1, 1, 2, 2, 2, 3][rng.usize(0..10)];
    while items.len() < lines {
        let sku = weighted(rng, CATALOGUE.iter().map(|p| p.3));
        if items.iter().all(|it| it.sku != sku) {
            let beans = CATALOGUE[usize::from(sku)].0.starts_with("BEAN");
            let quantity = if beans && rng.u32(0..4) == 0 { 2 } else { 1 };
            items.push(Item { sku, quantity });
        }
    }
    let subtotal: u32 = items
        .iter()
        .map(|it| CATALOGUE[usize::from(it.sku)].2 * it.quantity)
        .sum();
    let shipping = if subtotal >= FREE_SHIPPING_FROM {
        0
    } else {
        SHIPPING
    };
    (items[0].sku, subtotal + shipping)
}
