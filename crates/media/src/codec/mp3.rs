//! MP3 for the article's tcp-mp3 stream. (Being written.)
