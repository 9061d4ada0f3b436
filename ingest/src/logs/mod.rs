//! Log formats and line parsers. (being implemented)
