//! Chat sessions saved as JSON (`/save FILE`, `/load FILE`): the transcript with raw
//! texts and stats, the system prompt and the sampling settings. Saving is atomic
//! (temporary file + rename), and a saved session loads back to the same file. lmwb's
//! own notices are not part of a session.

use super::transcript::{Speaker, Transcript, Turn};
use crate::engine::sampler::SamplingParams;
use crate::engine::Stats;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedTurn {
    pub speaker: Speaker,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub lmwb_session: u32,
    pub model: Option<String>,
    pub system: Option<String>,
    pub sampling: SamplingParams,
    pub max_tokens: Option<usize>,
    pub max_kv_size: Option<usize>,
    pub turns: Vec<SavedTurn>,
}

#[derive(thiserror::Error, Debug)]
pub enum SessionError {
    #[error("cannot read session {path}: {why}")]
    Read { path: PathBuf, why: String },
    #[error("{path} is not an lmwb session: {why}")]
    Parse { path: PathBuf, why: String },
    #[error("cannot save session to {path}: {why}")]
    Write { path: PathBuf, why: String },
}

impl Session {
    pub fn turns_from(t: &Transcript) -> Vec<SavedTurn> {
        t.turns
            .iter()
            .filter(|t| t.speaker != Speaker::Notice)
            .map(|t| SavedTurn {
                speaker: t.speaker,
                content: t.raw.clone(),
                stats: t.stats.clone(),
                error: t.error.clone(),
            })
            .collect()
    }

    pub fn transcript(&self) -> Transcript {
        let turns = self
            .turns
            .iter()
            .map(|s| match s.speaker {
                Speaker::Assistant => {
                    Turn::assistant_from(&s.content, s.stats.clone(), s.error.clone())
                }
                Speaker::User => Turn::user(s.content.clone()),
                Speaker::Notice => Turn::notice(s.content.clone()),
            })
            .collect();
        Transcript { turns }
    }

    pub fn save(&self, path: &Path) -> Result<(), SessionError> {
        let err = |why: String| SessionError::Write {
            path: path.to_path_buf(),
            why,
        };
        let json = serde_json::to_string_pretty(self).map_err(|e| err(e.to_string()))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| err(e.to_string()))?;
        tmp.write_all(json.as_bytes())
            .and_then(|_| tmp.write_all(b"\n"))
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| err(e.to_string()))?;
        tmp.persist(path).map_err(|e| err(e.error.to_string()))?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Session, SessionError> {
        let text = std::fs::read_to_string(path).map_err(|e| SessionError::Read {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        let s: Session = serde_json::from_str(&text).map_err(|e| SessionError::Parse {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        if s.lmwb_session != VERSION {
            return Err(SessionError::Parse {
                path: path.to_path_buf(),
                why: format!(
                    "session format {} (this lmwb reads format {VERSION})",
                    s.lmwb_session
                ),
            });
        }
        Ok(s)
    }
}
