'use strict';
// Prints the addon's C++ sources (native/sources.txt, one path per line), space-separated, for
// binding.gyp; CMakeLists.txt reads the same file. One list for both builds.
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(__dirname, '..', 'native', 'sources.txt');
console.log(fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).join(' '));
