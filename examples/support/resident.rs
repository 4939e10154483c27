//! This process's resident memory, read from `/proc` (Linux).

/// Resident pages (`/proc/self/statm`, second field) times the page size.
pub fn resident_bytes() -> Result<u64, String> {
    let statm = std::fs::read_to_string("/proc/self/statm")
        .map_err(|e| format!("cannot read /proc/self/statm: {e}"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| format!("unexpected /proc/self/statm: {statm:?}"))?;
    Ok(pages * page_size()?)
}

/// The page size the kernel gave this process (`AT_PAGESZ` in the
/// auxiliary vector: pairs of native-endian words, type then value).
fn page_size() -> Result<u64, String> {
    const AT_PAGESZ: u64 = 6;
    const WORD: usize = std::mem::size_of::<usize>();
    let auxv = std::fs::read("/proc/self/auxv")
        .map_err(|e| format!("cannot read /proc/self/auxv: {e}"))?;
    let words: Vec<u64> = auxv
        .chunks_exact(WORD)
        .map(|chunk| {
            let mut bytes = [0; WORD];
            bytes.copy_from_slice(chunk);
            usize::from_ne_bytes(bytes) as u64
        })
        .collect();
    words
        .chunks_exact(2)
        .find(|pair| pair[0] == AT_PAGESZ)
        .map(|pair| pair[1])
        .ok_or_else(|| "no page size in /proc/self/auxv".to_string())
}

#[cfg(test)]
mod tests {
    // Paths rather than an import: a bench compiles this module without
    // running, or keeping, its tests.
    #[test]
    fn page_size_is_a_power_of_two() {
        let size = super::page_size().expect("page size");
        assert!(size >= 4096 && size.is_power_of_two(), "{size}");
    }

    #[test]
    fn resident_memory_grows_with_touched_allocations() {
        let before = super::resident_bytes().expect("resident");
        // Kept from the optimizer, which may leave out a block nobody reads.
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        let after = super::resident_bytes().expect("resident");
        assert!(after >= before + (60 << 20), "{before} → {after}");
        drop(block);
    }
}
