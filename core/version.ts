/** The hexz version written into every archive header ("hexz <VERSION>"). */
export const VERSION = "0.1.0";
