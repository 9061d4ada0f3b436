use crate::raw::build::BuilderNode;
use crate::raw::{CompiledAddr, Output, Transition, NONE_ADDRESS};

// trawl patch (see vendor/README.md): the same table, buckets and LRU decisions as upstream
// fst 0.4.7, laid out for fewer cache misses. A bucket is `mru_size` 16-byte cells (hash of
// the node, and its compiled address with the slot of its node), MRU first; the nodes live
// in a separate array, one 64-byte line each with up to two transitions inline, and are read
// only when a hash agrees and written only when a node is stored. Promoting a cell moves
// 16 bytes, never a node.

#[derive(Debug)]
pub struct Registry {
    table: Vec<RegistryCell>,
    nodes: Vec<StoredNode>,
    /// Transitions of stored nodes with more than `INLINE` of them, by slot.
    spills: Vec<Vec<Transition>>,
    table_size: usize, // number of rows
    mru_size: usize,   // number of columns
}

#[derive(Debug)]
struct RegistryCache<'a> {
    cells: &'a mut [RegistryCell],
    nodes: &'a mut [StoredNode],
    spills: &'a mut [Vec<Transition>],
}

/// One registry cell: the full hash of its node, and its compiled address (low 56 bits)
/// with the node's slot in the bucket's node array (high 8 bits).
#[derive(Clone, Copy, Debug)]
pub struct RegistryCell {
    hash: u64,
    addr_slot: u64,
}

const ADDR_BITS: u32 = 56;
const ADDR_MASK: u64 = (1 << ADDR_BITS) - 1;
const INLINE: usize = 2;

/// A registered node: its transitions inline when there are at most `INLINE`.
#[derive(Clone, Debug)]
#[repr(align(64))]
struct StoredNode {
    final_output: Output,
    is_final: bool,
    len: u32,
    inline: [Transition; INLINE],
}

impl Default for StoredNode {
    fn default() -> StoredNode {
        StoredNode {
            final_output: Output::zero(),
            is_final: false,
            len: 0,
            inline: [Transition::default(); INLINE],
        }
    }
}

impl StoredNode {
    #[inline]
    fn equals(&self, node: &BuilderNode, spill: &[Transition]) -> bool {
        self.is_final == node.is_final
            && self.final_output == node.final_output
            && self.len as usize == node.trans.len()
            && if node.trans.len() <= INLINE {
                self.inline[..node.trans.len()] == node.trans[..]
            } else {
                spill == &node.trans[..]
            }
    }

    #[inline]
    fn set(&mut self, node: &BuilderNode, spill: &mut Vec<Transition>) {
        self.is_final = node.is_final;
        self.final_output = node.final_output;
        self.len = node.trans.len() as u32;
        if node.trans.len() <= INLINE {
            self.inline[..node.trans.len()].copy_from_slice(&node.trans);
        } else {
            spill.clear();
            spill.extend_from_slice(&node.trans);
        }
    }
}

#[derive(Debug)]
pub enum RegistryEntry<'a> {
    Found(CompiledAddr),
    NotFound(&'a mut RegistryCell),
    Rejected,
}

impl Registry {
    pub fn new(table_size: usize, mru_size: usize) -> Registry {
        // Slots are 8 bits; upstream's builder uses 2.
        assert!(mru_size <= 256);
        let ncells = table_size.checked_mul(mru_size).unwrap();
        let table = (0..ncells)
            .map(|i| RegistryCell::none((i % mru_size.max(1)) as u64))
            .collect();
        Registry {
            table,
            nodes: vec![StoredNode::default(); ncells],
            spills: vec![Vec::new(); ncells],
            table_size,
            mru_size,
        }
    }

    pub fn entry<'a>(&'a mut self, node: &BuilderNode) -> RegistryEntry<'a> {
        if self.table.is_empty() {
            return RegistryEntry::Rejected;
        }
        let hash = self.hash(node);
        // The builder's table size as a constant, so the remainder is a multiplication.
        let bucket = if self.table_size == 10_000 {
            (hash % 10_000) as usize
        } else {
            (hash as usize) % self.table_size
        };
        let start = self.mru_size * bucket;
        let end = start + self.mru_size;
        RegistryCache {
            cells: &mut self.table[start..end],
            nodes: &mut self.nodes[start..end],
            spills: &mut self.spills[start..end],
        }
        .entry(node, hash)
    }

    fn hash(&self, node: &BuilderNode) -> u64 {
        // Basic FNV-1a hash as described:
        // https://en.wikipedia.org/wiki/Fowler%E2%80%93Noll%E2%80%93Vo_hash_function
        //
        // In unscientific experiments, this provides the same compression
        // as `std::hash::SipHasher` but is much much faster.
        const FNV_PRIME: u64 = 1099511628211;
        let mut h = 14695981039346656037;
        h = (h ^ (node.is_final as u64)).wrapping_mul(FNV_PRIME);
        h = (h ^ node.final_output.value()).wrapping_mul(FNV_PRIME);
        for t in &node.trans {
            h = (h ^ (t.inp as u64)).wrapping_mul(FNV_PRIME);
            h = (h ^ t.out.value()).wrapping_mul(FNV_PRIME);
            h = (h ^ (t.addr as u64)).wrapping_mul(FNV_PRIME);
        }
        h
    }
}

impl<'a> RegistryCache<'a> {
    fn entry(mut self, node: &BuilderNode, hash: u64) -> RegistryEntry<'a> {
        let found = if self.cells.len() == 2 {
            // Upstream's own case: no search loop, at most one swap.
            if self.matches(0, node, hash) {
                Some(0)
            } else if self.matches(1, node, hash) {
                Some(1)
            } else {
                None
            }
        } else {
            (0..self.cells.len()).find(|&i| self.matches(i, node, hash))
        };
        if let Some(i) = found {
            let addr = self.cells[i].addr();
            self.promote(i); // most recently used
            RegistryEntry::Found(addr)
        } else {
            // Discard the least recently used cell and store the node in its slot.
            let last = self.cells.len() - 1;
            let slot = self.cells[last].slot();
            if let (Some(n), Some(sp)) =
                (self.nodes.get_mut(slot), self.spills.get_mut(slot))
            {
                n.set(node, sp);
            }
            self.cells[last].hash = hash;
            self.promote(last);
            RegistryEntry::NotFound(&mut self.cells[0])
        }
    }

    /// An occupied cell `i` holding an equal node: hashes first, nodes only when they agree.
    #[inline]
    fn matches(&self, i: usize, node: &BuilderNode, hash: u64) -> bool {
        let c = &self.cells[i];
        if c.is_none() || c.hash != hash {
            return false;
        }
        let slot = c.slot();
        match (self.nodes.get(slot), self.spills.get(slot)) {
            (Some(n), Some(sp)) => n.equals(node, sp),
            _ => false,
        }
    }

    /// Move cell `i` to the front (as upstream's sequence of swaps does).
    fn promote(&mut self, i: usize) {
        assert!(i < self.cells.len());
        if i == 1 {
            self.cells.swap(0, 1);
        } else if i > 1 {
            self.cells[..=i].rotate_right(1);
        }
    }
}

impl RegistryCell {
    fn none(slot: u64) -> RegistryCell {
        RegistryCell { hash: 0, addr_slot: NONE_ADDRESS as u64 | slot << ADDR_BITS }
    }

    fn addr(&self) -> CompiledAddr {
        (self.addr_slot & ADDR_MASK) as CompiledAddr
    }

    fn slot(&self) -> usize {
        (self.addr_slot >> ADDR_BITS) as usize
    }

    fn is_none(&self) -> bool {
        self.addr() == NONE_ADDRESS
    }

    pub fn insert(&mut self, addr: CompiledAddr) {
        // An address beyond 56 bits (a 64 PiB FST) is not cached: the cell stays empty and
        // the node is written again when it recurs (a valid, larger FST).
        let addr = if (addr as u64) <= ADDR_MASK { addr as u64 } else { NONE_ADDRESS as u64 };
        self.addr_slot = addr | (self.addr_slot & !ADDR_MASK);
    }
}

#[cfg(test)]
mod tests {
    use super::{Registry, RegistryCache, RegistryCell, RegistryEntry};
    use crate::raw::build::BuilderNode;
    use crate::raw::{Output, Transition};

    fn assert_rejected(entry: RegistryEntry) {
        match entry {
            RegistryEntry::Rejected => {}
            entry => panic!("expected rejected entry, got: {:?}", entry),
        }
    }

    fn assert_not_found(entry: RegistryEntry) {
        match entry {
            RegistryEntry::NotFound(_) => {}
            entry => panic!("expected nout found entry, got: {:?}", entry),
        }
    }

    fn assert_insert_and_found(reg: &mut Registry, bnode: &BuilderNode) {
        match reg.entry(&bnode) {
            RegistryEntry::NotFound(cell) => cell.insert(1234),
            entry => panic!("unexpected not found entry, got: {:?}", entry),
        }
        match reg.entry(&bnode) {
            RegistryEntry::Found(addr) => assert_eq!(addr, 1234),
            entry => panic!("unexpected found entry, got: {:?}", entry),
        }
    }

    #[test]
    fn empty_is_ok() {
        let mut reg = Registry::new(0, 0);
        let bnode = BuilderNode {
            is_final: false,
            final_output: Output::zero(),
            trans: vec![],
        };
        assert_rejected(reg.entry(&bnode));
    }

    #[test]
    fn one_final_is_ok() {
        let mut reg = Registry::new(1, 1);
        let bnode = BuilderNode {
            is_final: true,
            final_output: Output::zero(),
            trans: vec![],
        };
        assert_insert_and_found(&mut reg, &bnode);
    }

    #[test]
    fn one_with_trans_is_ok() {
        let mut reg = Registry::new(1, 1);
        let bnode = BuilderNode {
            is_final: false,
            final_output: Output::zero(),
            trans: vec![Transition {
                addr: 0,
                inp: b'a',
                out: Output::zero(),
            }],
        };
        assert_insert_and_found(&mut reg, &bnode);
        assert_not_found(
            reg.entry(&BuilderNode { is_final: true, ..bnode.clone() }),
        );
        assert_not_found(reg.entry(&BuilderNode {
            trans: vec![Transition {
                addr: 0,
                inp: b'b',
                out: Output::zero(),
            }],
            ..bnode.clone()
        }));
        assert_not_found(reg.entry(&BuilderNode {
            trans: vec![Transition {
                addr: 0,
                inp: b'a',
                out: Output::new(1),
            }],
            ..bnode.clone()
        }));
    }

    #[test]
    fn cache_works() {
        let mut reg = Registry::new(1, 1);

        let bnode1 = BuilderNode { is_final: true, ..BuilderNode::default() };
        assert_insert_and_found(&mut reg, &bnode1);

        let bnode2 =
            BuilderNode { final_output: Output::new(1), ..bnode1.clone() };
        assert_insert_and_found(&mut reg, &bnode2);
        assert_not_found(reg.entry(&bnode1));
    }

    #[test]
    fn promote() {
        let bn = BuilderNode::default();
        let mut bnodes: Vec<RegistryCell> = (1..=4)
            .map(|a| {
                let mut c = RegistryCell::none(a as u64 - 1);
                c.insert(a);
                c
            })
            .collect();
        let _ = bn;
        let mut nodes = vec![super::StoredNode::default(); 4];
        let mut spills = vec![Vec::new(); 4];
        let mut cache = RegistryCache {
            cells: &mut bnodes,
            nodes: &mut nodes,
            spills: &mut spills,
        };

        cache.promote(0);
        assert_eq!(cache.cells[0].addr(), 1);
        assert_eq!(cache.cells[1].addr(), 2);
        assert_eq!(cache.cells[2].addr(), 3);
        assert_eq!(cache.cells[3].addr(), 4);

        cache.promote(1);
        assert_eq!(cache.cells[0].addr(), 2);
        assert_eq!(cache.cells[1].addr(), 1);
        assert_eq!(cache.cells[2].addr(), 3);
        assert_eq!(cache.cells[3].addr(), 4);

        cache.promote(3);
        assert_eq!(cache.cells[0].addr(), 4);
        assert_eq!(cache.cells[1].addr(), 2);
        assert_eq!(cache.cells[2].addr(), 1);
        assert_eq!(cache.cells[3].addr(), 3);

        cache.promote(2);
        assert_eq!(cache.cells[0].addr(), 1);
        assert_eq!(cache.cells[1].addr(), 4);
        assert_eq!(cache.cells[2].addr(), 2);
        assert_eq!(cache.cells[3].addr(), 3);
    }
}
