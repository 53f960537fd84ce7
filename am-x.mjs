import b from 'binaryen';
console.log(Object.keys(b).filter(k=>/Memor/.test(k) && !/Vec128|Atomic|Load|Store|Id$/.test(k)).join(' '));
console.log(Object.keys(b.Module.prototype ?? {}).filter(k=>/emor/.test(k)));
const m = new b.Module(); console.log(Object.keys(m).filter(k=>/emor/i.test(k)));
