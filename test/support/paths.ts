/** Path helpers without @std/path (JSR is not reachable from our build machines). */
import { fileURLToPath } from "node:url";
import path from "node:path";

export const join = path.join;
export const dirname = path.dirname;
export const fromFileUrl = (url: string): string => fileURLToPath(url);
