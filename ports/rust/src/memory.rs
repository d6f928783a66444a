//! Linear memory (MACHINE.md §3): `MEMORY_BYTES` bytes, all zero when a
//! run starts.
//!
//! Zeroing 10 MiB costs far more than a small program's whole run, so each
//! thread keeps one buffer between runs: writes mark the 4 KiB pages they
//! touch, and when a run's memory is dropped only those pages are zeroed
//! before the buffer goes back to the thread's pool.

use std::cell::RefCell;

use crate::spec::MEMORY_BYTES;

const PAGE_SHIFT: usize = 12;
const PAGES: usize = MEMORY_BYTES.div_ceil(1 << PAGE_SHIFT);

thread_local! {
    /// A zeroed buffer left by this thread's previous run.
    static POOL: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

pub struct Memory {
    bytes: Vec<u8>,
    /// Pages written since the buffer was last all zero.
    dirty: Vec<bool>,
}

impl Memory {
    /// All-zero memory.
    pub fn new() -> Memory {
        let bytes = POOL
            .try_with(|p| p.borrow_mut().take())
            .ok()
            .flatten()
            .unwrap_or_else(|| vec![0; MEMORY_BYTES]);
        debug_assert_eq!(bytes.len(), MEMORY_BYTES);
        Memory {
            bytes,
            dirty: vec![false; PAGES],
        }
    }

    /// The `w` bytes at `ea` (the caller checked `ea + w <= MEMORY_BYTES`).
    #[inline(always)]
    pub fn read(&self, ea: usize, w: usize) -> &[u8] {
        &self.bytes[ea..ea + w]
    }

    /// Write `data` at `ea` (the caller checked it fits).
    #[inline(always)]
    pub fn write(&mut self, ea: usize, data: &[u8]) {
        let end = ea + data.len();
        self.bytes[ea..end].copy_from_slice(data);
        for page in ea >> PAGE_SHIFT..=(end.max(ea + 1) - 1) >> PAGE_SHIFT {
            self.dirty[page] = true;
        }
    }
}

impl Default for Memory {
    fn default() -> Self {
        Memory::new()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.bytes);
        for (page, _) in self.dirty.iter().enumerate().filter(|(_, d)| **d) {
            let start = page << PAGE_SHIFT;
            let end = (start + (1 << PAGE_SHIFT)).min(MEMORY_BYTES);
            bytes[start..end].fill(0);
        }
        // During thread teardown the pool may be gone: then just free.
        let _ = POOL.try_with(|p| *p.borrow_mut() = Some(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_memory_starts_zero() {
        {
            let mut m = Memory::new();
            m.write(0, &[1, 2, 3, 4]);
            m.write(4095, &[9, 9]); // spans two pages
            m.write(MEMORY_BYTES - 1, &[7]);
            m.write(5 << PAGE_SHIFT, &vec![5; 3 << PAGE_SHIFT]);
            assert_eq!(m.read(4094, 4), [0, 9, 9, 0]);
        }
        let m = Memory::new();
        assert!(m.bytes.iter().all(|&b| b == 0));
        assert_eq!(m.bytes.len(), MEMORY_BYTES);
    }
}
