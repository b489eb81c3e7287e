use steadfast::IntoStatus;

#[derive(IntoStatus)]
union Bits {
    word: u32,
    bytes: [u8; 4],
}

fn main() {}
