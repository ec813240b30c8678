//! A list of any length shown through a window of cached pages: the row
//! count is asked once, and only pages that scroll into view are read.

use std::collections::{HashMap, HashSet};

use crate::store::queries::PAGE_SIZE;

/// How many pages stay cached; the ones farthest from view go first.
const MAX_PAGES: usize = 40;

pub struct PagedList<R> {
    generation: u64,
    total: Option<usize>,
    count_asked: bool,
    pages: HashMap<usize, Vec<R>>,
    asked: HashSet<usize>,
}

impl<R> Default for PagedList<R> {
    fn default() -> Self {
        PagedList { generation: 0, total: None, count_asked: false, pages: HashMap::new(), asked: HashSet::new() }
    }
}

/// What the list needs read.
pub enum Need {
    Count(u64),
    Page(u64, usize),
}

impl<R> PagedList<R> {
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets everything (the data or the filter changed).
    pub fn invalidate(&mut self) {
        self.generation += 1;
        self.total = None;
        self.count_asked = false;
        self.pages.clear();
        self.asked.clear();
    }

    /// The row count, once known; asks for it otherwise, together with the
    /// first page, so the first rows do not wait for a second round trip.
    pub fn total(&mut self, need: &mut Vec<Need>) -> Option<usize> {
        if self.total.is_none() && !self.count_asked {
            self.count_asked = true;
            need.push(Need::Count(self.generation));
            if self.asked.insert(0) {
                need.push(Need::Page(self.generation, 0));
            }
        }
        self.total
    }

    /// Row `index`, or `None` while its page is being read.
    pub fn row(&mut self, index: usize, need: &mut Vec<Need>) -> Option<&R> {
        let page = index / PAGE_SIZE;
        if !self.pages.contains_key(&page) && self.asked.insert(page) {
            need.push(Need::Page(self.generation, page));
        }
        self.pages.get(&page).and_then(|rows| rows.get(index % PAGE_SIZE))
    }

    pub fn set_total(&mut self, generation: u64, total: usize) {
        if generation == self.generation {
            self.total = Some(total);
        }
    }

    pub fn set_page(&mut self, generation: u64, page: usize, rows: Vec<R>) {
        if generation != self.generation {
            return;
        }
        self.pages.insert(page, rows);
        if self.pages.len() > MAX_PAGES {
            let mut far: Vec<usize> = self.pages.keys().copied().collect();
            far.sort_by_key(|p| std::cmp::Reverse(p.abs_diff(page)));
            for p in far.into_iter().take(self.pages.len() - MAX_PAGES) {
                self.pages.remove(&p);
                self.asked.remove(&p);
            }
        }
    }

    /// Pages currently held (for the memory figures).
    pub fn cached_pages(&self) -> usize {
        self.pages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_each_page_once_and_drops_stale_answers() {
        let mut list: PagedList<u32> = PagedList::default();
        let mut need = Vec::new();
        assert_eq!(list.total(&mut need), None);
        assert_eq!(list.total(&mut need), None);
        assert!(list.row(5, &mut need).is_none());
        assert!(list.row(7, &mut need).is_none());
        assert_eq!(need.len(), 2, "one count and the first page, asked once");
        list.set_total(0, 1000);
        list.set_page(0, 0, (0..100).collect());
        assert_eq!(list.row(7, &mut need), Some(&7));
        list.invalidate();
        list.set_page(0, 1, (100..200).collect());
        assert!(list.row(150, &mut need).is_none(), "an answer of the old generation is dropped");
    }

    #[test]
    fn cache_is_bounded() {
        let mut list: PagedList<u32> = PagedList::default();
        for page in 0..100 {
            list.set_page(0, page, vec![0; 10]);
        }
        assert_eq!(list.cached_pages(), MAX_PAGES);
    }
}
