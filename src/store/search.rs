//! People search: by any part of a name or a number, in Cyrillic or Latin,
//! forgiving typos.
//!
//! The index (`people_fts`, trigram tokenizer, rowid = the person's rowid)
//! holds each person's names transliterated to Latin and the digits of their
//! phones. A query is transliterated the same way, so "Иванов", "ivanov" and
//! "Ivanoff" meet. Exact substrings are found first; when they are few, the
//! query's trigrams fetch candidates that are ranked by edit distance.

use rusqlite::{Connection, params};

use super::Result;
use crate::crm::{Phone, phone::search_digits};

/// Lowercases and transliterates Cyrillic (Russian and Ukrainian) to Latin.
pub fn translit(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let s = match c {
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' => "g",
            'ґ' => "g",
            'д' => "d",
            'е' | 'ё' | 'э' => "e",
            'є' => "ye",
            'ж' => "zh",
            'з' => "z",
            'и' => "i",
            'і' => "i",
            'ї' => "yi",
            'й' => "y",
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'о' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' => "u",
            'ф' => "f",
            'х' => "h",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ъ' | 'ь' | '\'' | '’' | 'ʼ' => "",
            'ы' => "y",
            'ю' => "yu",
            'я' => "ya",
            'w' => "v",
            'x' => "ks",
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push_str(s);
    }
    // Spellings that transliterate differently but sound the same.
    out.replace("kh", "h").replace("ff", "v")
}

/// The text indexed for a person's names.
pub fn names_key(last: &str, first: &str, middle: &str) -> String {
    translit(&format!("{last} {first} {middle}"))
}

/// The text indexed for a person's phones: digits of the international form
/// and of the national one, so "8916..." and "0671..." are found too.
pub fn phones_key<'a>(phones: impl IntoIterator<Item = &'a Phone>) -> String {
    let mut key = String::new();
    for p in phones {
        let d = p.digits();
        key.push_str(d);
        key.push(' ');
        if let Some(national) = d.strip_prefix('7') {
            key.push('8');
            key.push_str(national);
            key.push(' ');
        } else if let Some(national) = d.strip_prefix("38") {
            key.push_str(national);
            key.push(' ');
        }
    }
    key
}

/// Writes (or rewrites) the search entry of the person with `rowid`.
pub fn index_person(conn: &Connection, rowid: i64, names: &str, phones: &str) -> Result<()> {
    conn.execute("DELETE FROM people_fts WHERE rowid = ?", [rowid])?;
    conn.execute("INSERT INTO people_fts (rowid, names, phones) VALUES (?, ?, ?)", params![rowid, names, phones])?;
    Ok(())
}

/// One person found.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonHit {
    pub id: String,
    pub full_name: String,
    pub phones: Vec<String>,
    pub birth_date: Option<String>,
}

/// What the operator typed, understood once.
enum Query {
    Digits(String),
    Words(Vec<String>),
}

fn understand(input: &str) -> Option<Query> {
    let input = input.trim();
    if input.is_empty() {
        return None;
    }
    if let Some(d) = search_digits(input) {
        return Some(Query::Digits(d));
    }
    let words: Vec<String> =
        translit(input).split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned).collect();
    (!words.is_empty()).then_some(Query::Words(words))
}

fn quote(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// Searches people; at most `limit` hits, best first.
pub fn search_people(conn: &Connection, input: &str, limit: usize) -> Result<Vec<PersonHit>> {
    let rowids = match understand(input) {
        None => return Ok(Vec::new()),
        Some(Query::Digits(d)) if d.len() < 3 => return Ok(Vec::new()),
        Some(Query::Digits(d)) => fts_rowids(conn, &format!("phones : {}", quote(&d)), limit)?,
        Some(Query::Words(words)) => search_words(conn, &words, limit)?,
    };
    load_hits(conn, &rowids)
}

fn fts_rowids(conn: &Connection, fts_query: &str, limit: usize) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT rowid FROM people_fts WHERE people_fts MATCH ? ORDER BY rank LIMIT ?")?;
    let rows = stmt.query_map(params![fts_query, limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn search_words(conn: &Connection, words: &[String], limit: usize) -> Result<Vec<i64>> {
    // Trigram needs three characters; shorter words (initials) only filter.
    let long: Vec<&String> = words.iter().filter(|w| w.chars().count() >= 3).collect();
    if long.is_empty() {
        return Ok(Vec::new());
    }
    let exact = long.iter().map(|w| format!("names : {}", quote(w))).collect::<Vec<_>>().join(" AND ");
    let mut found = fts_rowids(conn, &exact, limit)?;
    if found.len() >= limit {
        return Ok(found);
    }
    // Typo-tolerant: candidates sharing trigrams, ranked by edit distance.
    let mut grams: Vec<String> = Vec::new();
    for w in &long {
        let chars: Vec<char> = w.chars().collect();
        for g in chars.windows(3) {
            let g: String = g.iter().collect();
            if !grams.contains(&g) {
                grams.push(g);
            }
        }
    }
    let any = grams.iter().map(|g| format!("names : {}", quote(g))).collect::<Vec<_>>().join(" OR ");
    let mut stmt =
        conn.prepare_cached("SELECT rowid, names FROM people_fts WHERE people_fts MATCH ? ORDER BY rank LIMIT 400")?;
    let candidates: Vec<(i64, String)> =
        stmt.query_map([any], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    let mut scored: Vec<(usize, i64)> = candidates
        .into_iter()
        .filter(|(rowid, _)| !found.contains(rowid))
        .filter_map(|(rowid, names)| {
            let name_words: Vec<&str> = names.split(' ').filter(|w| !w.is_empty()).collect();
            let mut total = 0;
            for w in &long {
                let best = name_words.iter().map(|n| prefix_distance(w, n)).min()?;
                // One typo per four letters, at least one.
                if best > (w.chars().count() / 4).max(1) {
                    return None;
                }
                total += best;
            }
            Some((total, rowid))
        })
        .collect();
    scored.sort();
    found.extend(scored.into_iter().map(|(_, rowid)| rowid).take(limit - found.len()));
    Ok(found)
}

/// Edit distance (with transpositions) between `query` and the closest
/// prefix of `word`: "ivano" is 0 away from "ivanov", "ivnaov" 1.
pub fn prefix_distance(query: &str, word: &str) -> usize {
    let q: Vec<char> = query.chars().collect();
    let w: Vec<char> = word.chars().collect();
    let (n, m) = (q.len(), w.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(q[i - 1] != w[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && q[i - 1] == w[j - 2] && q[i - 2] == w[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    // Any prefix of the word: the minimum over the last row.
    d[n].iter().copied().min().unwrap_or(n)
}

fn load_hits(conn: &Connection, rowids: &[i64]) -> Result<Vec<PersonHit>> {
    let mut person = conn.prepare_cached(
        "SELECT id, last_name || ' ' || first_name || CASE WHEN middle_name = '' THEN '' ELSE ' ' || middle_name END, birth_date
         FROM people WHERE rowid = ? AND deleted_at IS NULL",
    )?;
    let mut phones = conn.prepare_cached(
        "SELECT phone_e164 FROM person_phones WHERE person_id = ? AND deleted_at IS NULL ORDER BY phone_e164",
    )?;
    let mut hits = Vec::with_capacity(rowids.len());
    for rowid in rowids {
        let row = person.query_row([rowid], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)));
        let (id, full_name, birth_date) = match row {
            Ok(row) => row,
            Err(rusqlite::Error::QueryReturnedNoRows) => continue,
            Err(e) => return Err(e.into()),
        };
        let phones = phones
            .query_map([&id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .map(|p| Phone::from_e164_unchecked(p).display())
            .collect();
        hits.push(PersonHit { id, full_name, phones, birth_date });
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transliteration_meets_latin_spellings() {
        assert_eq!(translit("Иванов"), "ivanov");
        assert_eq!(translit("Ivanoff"), "ivanov");
        assert_eq!(translit("Щербак Юлія"), "shcherbak yuliya");
        assert_eq!(translit("Хмельницкий"), translit("Hmelnitskiy"));
        assert_eq!(translit("Соловьёв"), "solovev");
    }

    #[test]
    fn prefix_distance_forgives_typos() {
        assert_eq!(prefix_distance("ivano", "ivanov"), 0);
        assert_eq!(prefix_distance("ivnaov", "ivanov"), 1);
        assert_eq!(prefix_distance("ivonov", "ivanov"), 1);
        assert_eq!(prefix_distance("petrov", "ivanov"), 4);
    }

    #[test]
    fn phone_key_has_national_forms() {
        let p = Phone::parse("+79161234567", crate::crm::Country::Ru).unwrap();
        assert_eq!(phones_key([&p]), "79161234567 89161234567 ");
    }
}
