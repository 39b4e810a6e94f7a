//! Strategy rule tests.
