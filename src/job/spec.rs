//! Request bodies → validated jobs (filled in next).
