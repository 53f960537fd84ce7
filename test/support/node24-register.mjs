/** @fileoverview `--import` entry that installs node24-loader.mjs (see there). */
import { register } from 'node:module';

register('./node24-loader.mjs', import.meta.url);
