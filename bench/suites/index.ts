/**
 * @fileoverview The bench suites, in the order `farmem bench` runs them when none are named.
 */
import type { Suite } from '../lib/suite.js';
import { faultpathSuite } from './faultpath.js';
import { overheadSuite } from './overhead.js';
import { pagesizeSuite } from './pagesize.js';
import { peerSuite } from './peer.js';
import { programsSuite } from './programs.js';
import { redisSuite } from './redis.js';
import { remoteSuite } from './remote.js';
import { sweepSuite } from './sweep.js';

export const SUITES: readonly Suite[] = [overheadSuite, programsSuite, sweepSuite, pagesizeSuite, faultpathSuite, remoteSuite, peerSuite, redisSuite];
