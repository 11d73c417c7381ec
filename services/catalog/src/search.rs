//! Full-text search over titles, synopses, cast and directors, with tantivy: BM25 ranking,
//! typo tolerance (fuzzy terms), accent folding ("amelie" finds "Amélie") and prefix matching
//! on the last word, so results come as the user types.
//!
//! The index lives in memory: it is rebuilt from the database at start, kept current by the
//! replica that writes, and by every other replica from `movie.*` events.

use std::sync::Mutex;

use anyhow::Context;
use tantivy::{
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader, TantivyDocument, Term,
    collector::{Count, TopDocs},
    query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery},
    schema::{FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value},
    tokenizer::{AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer},
};
use uuid::Uuid;

use crate::domain::Movie;

const ANALYZER: &str = "folded";

pub struct SearchIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    analyzer: TextAnalyzer,
    id: Field,
    /// Words in the title (a fast field): among equal matches the shorter title wins, so
    /// "godfathr" finds "The Godfather" before "The Godfather Part II".
    title_words: Field,
    /// Searched fields with their weight: a hit in the title counts most.
    fields: [(Field, f32); 4],
}

pub struct Hits {
    pub ids: Vec<(Uuid, f32)>,
    pub total: usize,
}

impl SearchIndex {
    pub fn new() -> anyhow::Result<Self> {
        let mut schema = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let id = schema.add_text_field("id", STRING | STORED);
        let title = schema.add_text_field("title", text.clone());
        let cast = schema.add_text_field("cast", text.clone());
        let director = schema.add_text_field("director", text.clone());
        let synopsis = schema.add_text_field("synopsis", text);
        let title_words = schema.add_u64_field("title_words", FAST);
        let index = Index::create_in_ram(schema.build());
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build();
        index.tokenizers().register(ANALYZER, analyzer.clone());
        // One indexing thread with the smallest arena tantivy allows: the catalog is small and
        // memory counts more than indexing speed here.
        let writer = index.writer_with_num_threads(1, 15_000_000).context("creating the index writer")?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Self {
            reader,
            writer: Mutex::new(writer),
            analyzer,
            id,
            title_words,
            fields: [(title, 3.0), (cast, 1.5), (director, 1.5), (synopsis, 1.0)],
        })
    }

    fn document(&self, movie: &Movie) -> TantivyDocument {
        let [(title, _), (cast, _), (director, _), (synopsis, _)] = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(self.id, movie.id.to_string());
        doc.add_text(title, &movie.title);
        doc.add_u64(self.title_words, self.terms(&movie.title).len() as u64);
        for name in &movie.cast {
            doc.add_text(cast, name);
        }
        doc.add_text(director, &movie.director);
        doc.add_text(synopsis, &movie.synopsis);
        doc
    }

    fn commit(&self, writer: &mut IndexWriter) -> anyhow::Result<()> {
        writer.commit().context("committing the index")?;
        self.reader.reload().context("reloading the index")?;
        Ok(())
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace the whole index with these movies. Blocking: call from `spawn_blocking`.
    pub fn rebuild(&self, movies: &[Movie]) -> anyhow::Result<()> {
        let mut writer = self.writer();
        writer.delete_all_documents()?;
        for movie in movies {
            writer.add_document(self.document(movie))?;
        }
        self.commit(&mut writer)
    }

    /// Add or replace one movie. Blocking.
    pub fn upsert(&self, movie: &Movie) -> anyhow::Result<()> {
        let mut writer = self.writer();
        writer.delete_term(Term::from_field_text(self.id, &movie.id.to_string()));
        writer.add_document(self.document(movie))?;
        self.commit(&mut writer)
    }

    /// Take a movie out. Blocking.
    pub fn remove(&self, id: Uuid) -> anyhow::Result<()> {
        let mut writer = self.writer();
        writer.delete_term(Term::from_field_text(self.id, &id.to_string()));
        self.commit(&mut writer)
    }

    /// The words of `text` as the index stores them: lowercased, accents folded.
    fn terms(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while let Some(token) = stream.next() {
            terms.push(token.text.clone());
        }
        terms.truncate(12); // a query is a few words; more only costs time
        terms
    }

    /// One word's alternatives in every field: exact (BM25, counted double), within a typo or
    /// two, and, for the word being typed, as a prefix.
    fn word_query(&self, word: &str, typing: bool) -> Box<dyn Query> {
        let distance = match word.chars().count() {
            0..=3 => 0,
            4..=7 => 1,
            _ => 2,
        };
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, weight) in self.fields {
            let term = Term::from_field_text(field, word);
            let exact = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
            alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(exact), weight * 2.0))));
            if distance > 0 {
                let fuzzy = FuzzyTermQuery::new(term.clone(), distance, true);
                alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(fuzzy), weight))));
            }
            if typing && word.chars().count() >= 2 {
                let prefix = FuzzyTermQuery::new_prefix(term, 0, true);
                alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(prefix), weight))));
            }
        }
        Box::new(BooleanQuery::new(alternatives))
    }

    /// Movies matching `q`, best first. Every word must match somewhere; when that finds
    /// nothing, any word may.
    pub fn search(&self, q: &str, limit: usize, offset: usize) -> anyhow::Result<Hits> {
        let words = self.terms(q);
        if words.is_empty() {
            return Ok(Hits { ids: Vec::new(), total: 0 });
        }
        let searcher = self.reader.searcher();
        for occur in [Occur::Must, Occur::Should] {
            let last = words.len() - 1;
            let clauses: Vec<(Occur, Box<dyn Query>)> =
                words.iter().enumerate().map(|(i, w)| (occur, self.word_query(w, i == last))).collect();
            let query = BooleanQuery::new(clauses);
            let top = TopDocs::with_limit(limit.max(1)).and_offset(offset).tweak_score(
                |segment: &SegmentReader| {
                    let words =
                        segment.fast_fields().u64("title_words").ok().map(|c| c.first_or_default_col(1));
                    move |doc: DocId, score: Score| {
                        let n = words.as_ref().map_or(1, |w| w.get_val(doc)).max(1);
                        score * (1.0 + 0.2 / n as Score)
                    }
                },
            );
            let collector = (top, Count);
            let (top, total) = searcher.search(&query, &collector)?;
            if total == 0 && occur == Occur::Must && words.len() > 1 {
                continue;
            }
            let mut ids = Vec::with_capacity(top.len());
            for (score, address) in top {
                let doc: TantivyDocument = searcher.doc(address)?;
                let id = doc.get_first(self.id).and_then(|v| v.as_str()).and_then(|s| s.parse().ok());
                if let Some(id) = id {
                    ids.push((id, score));
                }
            }
            return Ok(Hits { ids, total });
        }
        Ok(Hits { ids: Vec::new(), total: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movie(title: &str, director: &str, cast: &[&str], synopsis: &str) -> Movie {
        Movie {
            id: Uuid::now_v7(),
            title: title.into(),
            synopsis: synopsis.into(),
            genres: vec!["drama".into()],
            runtime_minutes: 100,
            release_date: None,
            director: director.into(),
            cast: cast.iter().map(|c| (*c).to_owned()).collect(),
            rating: None,
            rating_count: 0,
            poster_url: None,
            featured: false,
            streamable: false,
            imdb_id: None,
        }
    }

    fn titles(index: &SearchIndex, all: &[Movie], q: &str) -> Vec<String> {
        let hits = index.search(q, 10, 0).expect("search");
        hits.ids
            .iter()
            .filter_map(|(id, _)| all.iter().find(|m| m.id == *id))
            .map(|m| m.title.clone())
            .collect()
    }

    fn sample() -> (SearchIndex, Vec<Movie>) {
        let movies = vec![
            movie(
                "The Godfather",
                "Francis Ford Coppola",
                &["Marlon Brando", "Al Pacino"],
                "A crime family's patriarch hands over his empire.",
            ),
            movie(
                "Amélie",
                "Jean-Pierre Jeunet",
                &["Audrey Tautou"],
                "A shy waitress in Paris decides to change the lives of others.",
            ),
            movie(
                "Alien",
                "Ridley Scott",
                &["Sigourney Weaver"],
                "The crew of a space tug meets a deadly creature.",
            ),
            movie(
                "Heat",
                "Michael Mann",
                &["Al Pacino", "Robert De Niro"],
                "A detective hunts a crew of professional thieves.",
            ),
        ];
        let index = SearchIndex::new().expect("index");
        index.rebuild(&movies).expect("built");
        (index, movies)
    }

    #[test]
    fn typos_accents_and_prefixes_are_forgiven() {
        let (index, all) = sample();
        assert_eq!(titles(&index, &all, "godfathr").first().map(String::as_str), Some("The Godfather"));
        assert_eq!(titles(&index, &all, "amelie").first().map(String::as_str), Some("Amélie"));
        assert_eq!(titles(&index, &all, "AMÉLIE").first().map(String::as_str), Some("Amélie"));
        assert_eq!(titles(&index, &all, "sigou").first().map(String::as_str), Some("Alien"));
        assert!(titles(&index, &all, "zzzzqqq").is_empty());
    }

    #[test]
    fn among_equal_matches_the_shorter_title_ranks_first() {
        let movies = vec![
            movie(
                "The Godfather Part II",
                "Francis Ford Coppola",
                &["Al Pacino"],
                "The family's story goes on.",
            ),
            movie("The Godfather", "Francis Ford Coppola", &["Marlon Brando"], "A crime family's patriarch."),
        ];
        let index = SearchIndex::new().expect("index");
        index.rebuild(&movies).expect("built");
        assert_eq!(titles(&index, &movies, "godfathr"), vec!["The Godfather", "The Godfather Part II"]);
    }

    #[test]
    fn the_title_outranks_the_cast_and_all_words_must_match_first() {
        let (index, all) = sample();
        let pacino = titles(&index, &all, "pacino");
        assert_eq!(pacino.len(), 2, "{pacino:?}");
        assert_eq!(titles(&index, &all, "pacino heat"), vec!["Heat"]);
        assert_eq!(titles(&index, &all, "coppola"), vec!["The Godfather"]);
    }

    #[test]
    fn updates_and_removals_show_at_once() {
        let (index, mut all) = sample();
        all[2].title = "Aliens".into();
        index.upsert(&all[2]).expect("updated");
        assert_eq!(titles(&index, &all, "aliens").first().map(String::as_str), Some("Aliens"));
        index.remove(all[0].id).expect("removed");
        assert!(!titles(&index, &all, "godfather").contains(&"The Godfather".to_owned()));
    }
}
