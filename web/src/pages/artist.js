import { h } from '../lib/dom.js';

export default {
  path: '/artists/:id',
  title: 'artist',
  async render(main) {
    main.append(h('h1', null, 'artist'));
  },
};
